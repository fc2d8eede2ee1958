"""Maps the repository's top-level folders onto the `rolescope` package tree.

platform/ is the `rolescope` namespace package: it must never hold an
__init__.py, or a regular package called `platform` at the repository root
would shadow the standard library module of that name (uuid, httpx, locust and
uvicorn import it) whenever the root is on sys.path.
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "rolescope": "platform",
    "rolescope.exporters": "exporters",
    "rolescope.loadtests": "loadtests",
    "rolescope.dashboards": "dashboards",
    "rolescope.alerts": "alerts",
    "rolescope.examples": "examples",
}


def _packages() -> list[str]:
    found = list(PACKAGE_DIRS)
    for package, folder in PACKAGE_DIRS.items():
        found += [f"{package}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=_packages(), package_dir=PACKAGE_DIRS)
