"""共享直播: the live schedule, the relay of a broadcast to the room, and its replay (直播回看)."""
