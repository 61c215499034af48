# SPDX-License-Identifier: AGPL-3.0-only
"""``twistd mas``: the Matrix Authentication Service as a twistd plugin.

Imports of :mod:`mas_twisted` stay inside ``makeService`` so that ``twistd --help`` (which
loads every plugin) stays fast and never fails because of this project.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    synopsis = "[-c CONFIG]... [--no-migrate] [--no-sync] [--no-worker | --worker-only]"
    longdesc = (
        "Runs the Matrix Authentication Service: the HTTP listeners of http.listeners and, "
        "unless --no-worker, the job worker. -c may be given several times; the files are "
        "merged in order. Without -c, MAS_CONFIG (colon-separated) or ./config.yaml is read."
    )
    optFlags = [
        ["no-migrate", None, "Do not apply pending database migrations on start"],
        ["no-sync", None, "Do not sync the static clients and upstream providers to the database"],
        ["no-worker", None, "Do not run the job worker in this process"],
        ["migrate", None, "Accepted for compatibility with MAS; migrating is the default"],
        [
            "worker-only",
            None,
            "Run only the job worker: no listeners, no migration, no sync (mas-cli worker)",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["config"] = []

    def opt_config(self, path: str) -> None:
        """Path to a configuration file (repeatable)"""
        self["config"].append(path)

    opt_c = opt_config


@implementer(IServiceMaker, IPlugin)
class MasServiceMaker:
    tapname = "mas"
    description = "Matrix Authentication Service (OAuth 2.0 / OpenID Connect for Matrix)"
    options = Options

    def makeService(self, options: Options):
        from mas_twisted.app.service import make_service

        return make_service(options)


service_maker = MasServiceMaker()
