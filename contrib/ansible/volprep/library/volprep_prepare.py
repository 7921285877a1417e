#!/usr/bin/python3
# An Ansible module: one volprep run over one volume. It reports `changed` only when volprep
# changed something (its --json summary says so), runs volprep's dry run in check mode and
# shows its plan as the diff, and fails with volprep's own message.
import json
import shutil

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: volprep_prepare
short_description: Give a container user a volume tree with volprep
options:
  path: {description: The volume directory (or file), required: true, type: path}
  as: {description: "Container user UID[:GID]", required: true, type: str}
  mode: {description: own (chown) or acl (POSIX ACL entries), choices: [own, acl], default: own, type: str}
  acl_perms: {description: "With mode acl: r, rX, rw or rwX", choices: [r, rX, rw, rwX], type: str}
  chmod: {description: Also adjust modes (chmod syntax), type: str}
  exclude: {description: Globs to skip, type: list, elements: str, default: []}
  args: {description: More volprep arguments (a remap source, --threads), type: list, elements: str, default: []}
  executable: {description: The volprep binary, type: str, default: volprep}
"""


def change_line(c):
    """One entry of the plan, as volprep's dry run prints it."""
    line = "%s  owner %s -> %s" % (c["path"], c["owner"]["before"], c["owner"]["after"])
    if "mode" in c:
        before, after = c["mode"]["before"], c["mode"]["after"]
        line += "  mode " + before + ("" if before == after else " -> " + after)
    else:
        line += "  symlink"
    if c.get("acl"):
        line += "  acl " + " ".join(c["acl"])
    return line


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            **{"as": dict(type="str", required=True)},
            mode=dict(type="str", choices=["own", "acl"], default="own"),
            acl_perms=dict(type="str", choices=["r", "rX", "rw", "rwX"]),
            chmod=dict(type="str"),
            exclude=dict(type="list", elements="str", default=[]),
            args=dict(type="list", elements="str", default=[]),
            executable=dict(type="str", default="volprep"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    volprep = shutil.which(p["executable"]) or p["executable"]
    if module.check_mode and not shutil.which(volprep):
        module.exit_json(changed=True, msg="volprep is not installed yet: nothing to compare")

    cmd = [volprep, p["path"], "--as", p["as"], "--json"]
    if p["mode"] == "acl":
        cmd.append("--acl")
        if p["acl_perms"]:
            cmd += ["--acl-perms", p["acl_perms"]]
    if p["chmod"]:
        cmd += ["--chmod", p["chmod"]]
    for glob in p["exclude"]:
        cmd += ["--exclude", glob]
    cmd += p["args"]
    if module.check_mode:
        cmd.append("--dry-run")

    rc, out, err = module.run_command(cmd)
    summary, plan = None, []
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "summary" in record:
            summary = record["summary"]
        elif "path" in record:
            plan.append(change_line(record))
    result = dict(cmd=cmd, rc=rc, stderr=err, summary=summary)
    if rc != 0 or summary is None:
        # volprep's words: its last error line, else all it said.
        lines = [l for l in err.splitlines() if l.strip()]
        errors = [l for l in lines if "error" in l]
        msg = (errors or lines or ["volprep exited %d" % rc])[-1]
        module.fail_json(msg=msg, **result)
    changes = summary.get("to_change" if module.check_mode else "changed", 0)
    if module.check_mode and plan:
        result["diff"] = dict(prepared="\n".join(plan) + "\n")
    module.exit_json(changed=changes > 0, **result)


if __name__ == "__main__":
    main()
