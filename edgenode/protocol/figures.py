"""The four service figures, defined once for the node and the hub (docs/hub.md, "One
definition of each figure").  Both ends count from the same usage events:

* 服务人次 (visits): ``view`` events, one per page a villager opened;
* 播放次数 (plays): ``play_start`` events;
* 观看时长 (watch hours): the sum of every event's seconds, / 3600 (only the player's
  progress and end beacons carry seconds);
* 终端数 (terminals): distinct terminal ids with at least one event, counted per node
  (the id is that node's ``tid`` cookie) — except :data:`ANONYMOUS`.

A request that arrives without a valid terminal cookie is recorded with the terminal
``ANONYMOUS``: its page view and plays count, but it is no terminal.  A browser keeps the
cookie it is given on that first response, so from its second request on it is counted
once; a scripted client that never sends the cookie back is never counted, however many
requests it makes (each used to look like a new terminal).
"""

VISIT = "view"
PLAY = "play_start"
ANONYMOUS = ""


def is_terminal(terminal_id) -> bool:
    return bool(terminal_id) and terminal_id != ANONYMOUS
