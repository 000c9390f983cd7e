"""Everything declarative lives in setup.cfg; this file only adds one build step.

The message catalogues are compiled (.po -> .mo) whenever the package is built,
as a wheel or as an editable install, so no compiled file is committed and the
.mo always matches its .po, whatever Babel the build used (docs/portal.md).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def compile_catalogues(root: Path) -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    made = []
    for po in sorted(root.glob("edgenode/**/translations/*/LC_MESSAGES/*.po")):
        with po.open("rb") as f:
            catalogue = read_po(f, locale=po.parent.parent.name)
        mo = po.with_suffix(".mo")
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalogue, use_fuzzy=False)
        tmp.replace(mo)
        made.append(mo)
    return made


class build_py_with_catalogues(build_py):
    # Compiled in the source tree, before package data is collected: an editable
    # install reads the tree itself, and a wheel picks the .mo up as package data.
    def run(self):
        compile_catalogues(Path(__file__).resolve().parent)
        super().run()


# setuptools runs this file as __main__; tests import compile_catalogues from it.
if __name__ == "__main__":
    setup(cmdclass={"build_py": build_py_with_catalogues})
