"""Several courses on one hub (ON PAPER: not run here; docs/instructors.md, "Several courses on
one hub"). Added after hub/jupyterhub_config.py, whose one course it generalises: one formgrader
service, one grader account, one course directory and two hub groups per course, as nbgrader's
"Can I use nbgrader with multiple courses?" documents. `make hub` sets up one course; the second's
account, directory and exchange folder are made the same way by hand (see the docs).

    c.JupyterHub.config_file ... load_subconfig("hub/several_courses/jupyterhub_config.py")
"""
c = get_config()  # noqa: F821 (traitlets provides it)

# id -> (grader account, port of its formgrader, roster ids of instructors, of students)
COURSES = {
    "backprop-lab": ("grader-backprop-lab", 9001, ["prof_a"], ["ada", "alan"]),
    "backprop-lab-advanced": ("grader-backprop-lab-advanced", 9002, ["prof_b"], ["ada", "grace"]),
}
ENV = "/opt/backprop-lab/env"

c.JupyterHub.load_groups = {}
c.JupyterHub.load_roles = []
c.JupyterHub.services = []
for course, (grader, port, instructors, students) in COURSES.items():
    # nbgrader's JupyterHubAuthPlugin reads these two groups to know who is in which course.
    c.JupyterHub.load_groups[f"nbgrader-{course}"] = {"users": students}
    c.JupyterHub.load_groups[f"formgrade-{course}"] = {"users": [*instructors, grader]}
    c.JupyterHub.load_roles += [
        {"name": f"formgrade-{course}", "groups": [f"formgrade-{course}"],
         "scopes": [f"access:services!service={course}", "list:services",
                    f"read:services!service={course}"]},
        {"name": f"nbgrader-{course}", "groups": [f"nbgrader-{course}"],
         "scopes": ["list:services", f"read:services!service={course}"]},
        {"name": f"{course}-formgrader", "services": [course],
         "scopes": ["list:users", "read:users", "list:groups", "read:groups", "groups"]},
    ]
    c.JupyterHub.services.append({
        "name": course, "url": f"http://127.0.0.1:{port}", "user": grader,
        "cwd": f"/srv/{course}/course", "command": [f"{ENV}/bin/jupyterhub-singleuser"],
        # the grader's own config folder turns formgrader back on, as for the one course
        "environment": {"JUPYTER_CONFIG_DIR": f"/srv/{course}/grader-jupyter",
                        "JUPYTERHUB_DEFAULT_URL": "/formgrader", "HOME": f"/home/{grader}"},
        "oauth_no_confirm": True,
    })
