"""JupyterHub configuration of a Backprop Lab class hub.

hub/setup.py copies this file to {root}/hub/ and writes the class's settings to
{root}/hub.json (ports, accounts from the roster, folders), which this file reads. It follows
nbgrader's "Using nbgrader with JupyterHub" (one class, several graders): the formgrader is a
JupyterHub service named after the course, run as the grader account, reachable by the hub
group formgrade-<course> only; students are the hub group nbgrader-<course>.
"""
import json
import os

from jupyterhub.app import JupyterHub
from jupyterhub.objects import Server
from jupyterhub.utils import AnyTimeoutError

c = get_config()  # noqa: F821 (provided by traitlets when JupyterHub loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(os.path.dirname(HERE), "hub.json")) as settings_file:
    S = json.load(settings_file)
ENV, COURSE = S["env"], S["course_id"]
PATH = f"{ENV}/bin:/usr/local/bin:/usr/bin:/bin"

# -- network: the proxy faces the users; the hub and the service listen on loopback only ---------
c.JupyterHub.ip = S["ip"]
c.JupyterHub.port = S["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = S["hub_port"]
c.ConfigurableHTTPProxy.command = [S["proxy"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{S['proxy_api_port']}"
c.ConfigurableHTTPProxy.pid_file = os.path.join(HERE, "jupyterhub-proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(HERE, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(HERE, "jupyterhub_cookie_secret")
# Put TLS in front of a hub reachable from outside (a reverse proxy, or these two settings):
# c.JupyterHub.ssl_cert = "/etc/letsencrypt/live/hub.example.org/fullchain.pem"
# c.JupyterHub.ssl_key = "/etc/letsencrypt/live/hub.example.org/privkey.pem"

# -- authentication ------------------------------------------------------------------------------
# Default: PAM, the machine's local accounts (hub/setup.py creates them from the roster).
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.open_sessions = False  # no login session per hub login (containers lack one)
c.Authenticator.allowed_users = set(S["students"]) | set(S["instructors"])

# LTI 1.3 from the LMS (Moodle, Canvas, ...): `pip install jupyterhub-ltiauthenticator` into
# /opt/backprop-lab/env, register the hub as an LTI 1.3 tool in the LMS, then replace the PAM
# lines above with these (values from the LMS's registration). Usernames come from the LTI
# claim below; each must be a local account of the roster (hub/setup.py creates them), since
# servers and nbgrader's exchange run as local users.
# c.JupyterHub.authenticator_class = "ltiauthenticator.lti13.auth.LTI13Authenticator"
# c.LTI13Authenticator.issuer = "https://moodle.example.org"
# c.LTI13Authenticator.authorize_url = "https://moodle.example.org/mod/lti/auth.php"
# c.LTI13Authenticator.jwks_endpoint = "https://moodle.example.org/mod/lti/certs.php"
# c.LTI13Authenticator.client_id = ["the client id the LMS gave"]
# c.LTI13Authenticator.username_key = "preferred_username"  # or "email", "sub"
# c.Authenticator.allowed_users = set(S["students"]) | set(S["instructors"])

# OAuth (GitHub, Google, a university's OpenID Connect): `pip install oauthenticator` into
# /opt/backprop-lab/env, register the hub as an OAuth application with callback URL
# https://<hub>/hub/oauth_callback, then (generic OpenID Connect shown):
# c.JupyterHub.authenticator_class = "generic-oauth"
# c.GenericOAuthenticator.client_id = "..."
# c.GenericOAuthenticator.client_secret = "..."   # better: the OAUTH_CLIENT_SECRET variable
# c.GenericOAuthenticator.oauth_callback_url = "https://hub.example.org/hub/oauth_callback"
# c.GenericOAuthenticator.authorize_url = "https://login.example.org/oauth2/authorize"
# c.GenericOAuthenticator.token_url = "https://login.example.org/oauth2/token"
# c.GenericOAuthenticator.userdata_url = "https://login.example.org/oauth2/userinfo"
# c.GenericOAuthenticator.username_claim = "preferred_username"
# c.GenericOAuthenticator.allowed_users = set(S["students"]) | set(S["instructors"])

# -- every user's JupyterLab: the course environment, as the user, in their home -----------------
c.Spawner.cmd = [f"{ENV}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    "PATH": PATH,
    # the class's nbgrader_config.py for students: course id, exchange, JupyterHubAuthPlugin
    "JUPYTER_CONFIG_PATH": S["student_config"],
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
}
# A student who opens a link to their stopped JupyterLab gets it started, not a button to press.
c.JupyterHub.implicit_spawn_seconds = 1
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# -- groups and roles (nbgrader's documented names) ---------------------------------------------
c.JupyterHub.load_groups = {
    f"nbgrader-{COURSE}": {"users": S["students"]},
    # the grader account too, as nbgrader's docs do: the formgrader's JupyterHubAuthPlugin
    # looks up the courses of the account it runs as (it is no login: not in allowed_users)
    f"formgrade-{COURSE}": {"users": [*S["instructors"], S["grader"]]},
}
c.JupyterHub.load_roles = [
    {   # instructors reach the formgrader service, and nobody else does
        "name": f"formgrade-{COURSE}",
        "groups": [f"formgrade-{COURSE}"],
        "scopes": [f"access:services!service={COURSE}", "list:services",
                   f"read:services!service={COURSE}"],
    },
    {   # students' servers ask the hub which courses they are in (JupyterHubAuthPlugin)
        "name": f"nbgrader-{COURSE}",
        "groups": [f"nbgrader-{COURSE}"],
        "scopes": ["list:services", f"read:services!service={COURSE}"],
    },
    {   # a server's token acts for its user (nbgrader's documented JupyterHub setting)
        "name": "server",
        "scopes": ["inherit"],
    },
    {   # the formgrader reads the roster and adds students it is given to nbgrader-<course>
        "name": f"{COURSE}-formgrader",
        "services": [COURSE],
        "scopes": ["list:users", "read:users", "list:groups", "read:groups", "groups"],
    },
]

# -- the formgrader: a service named after the course, run as the grader account -----------------
grader_home = f"/home/{S['grader']}"
c.JupyterHub.services = [
    {
        "name": COURSE,
        "url": f"http://127.0.0.1:{S['service_port']}",
        "command": [f"{ENV}/bin/jupyterhub-singleuser"],
        "user": S["grader"],
        "cwd": S["course"],
        "environment": {
            "PATH": PATH,
            "HOME": grader_home,
            # formgrader and Create Assignment turned back on for this server only
            "JUPYTER_CONFIG_DIR": S["grader_config"],
            "JUPYTERHUB_DEFAULT_URL": "/formgrader",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
        },
        "oauth_no_confirm": True,
    },
]

# JupyterHub gives a managed service 10 s to answer, then exits (hard-coded in
# JupyterHub.start_service; jupyterhub/jupyterhub#5138 asks for a setting). On a busy machine
# the formgrader's server takes longer to import and start; while its process runs, the hub
# waits for it up to SERVICE_START_TIMEOUT instead.
SERVICE_START_TIMEOUT = 120
_start_service = JupyterHub.start_service


async def start_service_patiently(self, service_name, service, ssl_context=None):
    if await _start_service(self, service_name, service, ssl_context):
        return True
    if not service.managed or not service.url or await service.spawner.poll() is not None:
        return False
    self.log.warning("Service %s is slow to start: waiting up to %s s more", service_name,
                     SERVICE_START_TIMEOUT)
    try:
        await Server.from_orm(service.orm.server).wait_up(
            http=True, timeout=SERVICE_START_TIMEOUT, ssl_context=ssl_context)
    except AnyTimeoutError:
        return False
    return True


JupyterHub.start_service = start_service_patiently
