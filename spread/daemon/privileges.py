"""What the original's main() does about running as root: the unix-socket directory check
before the sockets exist, and after them the chroot to RuntimeDir and the drop to
DaemonUser/DaemonGroup. Every line keeps the original's wording, priority and type.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable

from spread.config import alarm as A
from spread.config.model import SP_UNIX_SOCKET_DIR, SpreadConfig

Say = Callable[[int, int, str], None]  # (priority, alarm types, text)


class Fatal(Exception):
    """A FATAL alarm: the text, then the daemon ends."""

    def __init__(self, text: str, types: int = A.SECURITY) -> None:
        super().__init__(text)
        self.text = text
        self.types = types


def check_socket_dir(say: Say, socket_dir: str = SP_UNIX_SOCKET_DIR) -> None:
    """As root, warn when others may write where the unix socket goes (/tmp always)."""
    if os.geteuid() != 0:
        return
    say(A.INFO, A.SECURITY, "Spread is running as root so check file locations")
    try:
        st = os.stat(socket_dir)
    except OSError as e:
        raise Fatal(f"Spread unable to stat the unix domain socket dir ({socket_dir}). Please "
                    "verify the selected directory and restart the daemon") from e
    if st.st_mode & stat.S_IWOTH or st.st_uid != 0:
        say(A.WARNING, A.PRINT_TYPE,
            "Spread: SECURITY RISK! running as root, but unix domain socket is not in a "
            "root-only writable directory. May risk denial of service or malicious deletion "
            f"of unexpected file in directory: {socket_dir}")


def drop(config: SpreadConfig, say: Say) -> None:
    """chroot to RuntimeDir and become DaemonUser/DaemonGroup when started as root.

    Everything the daemon needs from the file system must be open or imported before this.
    """
    if os.geteuid() != 0:
        say(A.WARNING, A.SECURITY, "Spread: not running as root, won't chroot")
        return
    user, group, where = config.daemon_user, config.daemon_group, config.runtime_dir
    failed = (f"Spread: FAILED privilege drop to user/group '{user}/{group}' (defined in "
              "spread.conf or spread_params.h)")
    try:
        gid = grp.getgrnam(group).gr_gid
        uid = pwd.getpwnam(user).pw_uid
    except KeyError as e:
        raise Fatal(failed) from e
    try:
        os.chdir(where)
        os.chroot(where)
    except OSError as e:
        raise Fatal(f"Spread: FAILED chroot to '{where}'") from e
    try:
        os.setgroups([gid])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as e:
        raise Fatal(failed) from e
    say(A.INFO, A.SECURITY, "Spread: setugid and chroot successeful")  # sic
