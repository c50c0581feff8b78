"""Students' nbgrader settings when one hub runs several courses (ON PAPER; docs/instructors.md,
"Several courses on one hub"). Installed as the hub's system-wide nbgrader_config.py in place of
the one-course file `make hub` writes. No course id: JupyterHubAuthPlugin asks the hub which
courses (groups nbgrader-<course>) the student is in, and the Assignment List shows each."""
from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821 (traitlets provides it)
c.Exchange.root = "/srv/backprop-lab/exchange"      # one exchange, a folder per course in it
c.Authenticator.plugin_class = JupyterHubAuthPlugin
# Fetched labs land in ~/<course>/<lab>/, so two courses' labs of the same name never collide.
c.Exchange.path_includes_course = True
c.Validator.width = 102
