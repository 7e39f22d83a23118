"""Hosts from an Ansible inventory: read as Ansible reads it, judged as hand-written hosts are.

The Ansible file is read without ansible-core (INI and YAML, groups, children, vars,
ranges, group_vars/ and host_vars/); each host then goes through the inventory's own
checks, so a hostile value is refused exactly as in ``hosts:``, naming the Ansible file,
the line and the variable.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.ansible import hosts_for, parse
from orchestrator.exceptions import ConfigError
from orchestrator.inventory import Host, load_inventory
from tests.unit.conftest import APPLICATION

Write = Callable[[str, str], Path]

LAB_INI = """\
# the lab: one host per role
[db]
h1

[app:children]
server
client

[server]
h2

[client]
h3
"""

LAB_YAML = """\
all:
  children:
    db:
      hosts:
        h1:
    app:
      children:
        server: {hosts: {h2: }}
        client: {hosts: {h3: }}
"""

SSH_INI = """\
[db]
db1 ansible_host=192.0.2.10

[web]
web1 ansible_host=192.0.2.11 ansible_port=2222

[testers]
cl1 ansible_host=cl1.example.org ansible_user=tester

[all:vars]
ansible_user=deploy
ansible_ssh_private_key_file=keys/id_ed25519
"""

SSH_YAML = """\
all:
  vars:
    ansible_user: deploy
    ansible_ssh_private_key_file: keys/id_ed25519
  children:
    db:
      hosts:
        db1: {ansible_host: 192.0.2.10}
    web:
      hosts:
        web1: {ansible_host: 192.0.2.11, ansible_port: 2222}
    testers:
      hosts:
        cl1: {ansible_host: cl1.example.org, ansible_user: tester}
"""

SSH_ROLES = "{server: web, client: testers}"


def inventory(write: Write, ansible: str, text: str, extra: str = "", *, lab: bool = False) -> Path:
    """An inventory taking its hosts from the Ansible file ``ansible`` (written with ``text``)."""
    write(ansible, text)
    head = "lab: true\n" if lab else ""
    return write("inv.yaml", f"{head}hosts: {{ansible: {ansible}{extra}}}\n" + APPLICATION)


def hosts_of(
    write: Write, ansible: str, text: str, extra: str = "", *, lab: bool = False
) -> tuple[Host, ...]:
    return load_inventory(inventory(write, ansible, text, extra, lab=lab)).hosts


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def parsed(tmp_path: Path, name: str, text: str) -> dict[str, dict[str, object]]:
    """Each host of an Ansible file and its variables' values, by host name."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return {h.name: {k: v.value for k, v in h.vars.items()} for h in parse(path).hosts}


# --------------------------------------------------------------------------- both forms


def test_the_ini_and_yaml_forms_of_one_lab_give_the_same_hosts(
    app_dir: Path, write_yaml: Write
) -> None:
    from_ini = hosts_of(write_yaml, "lab.ini", LAB_INI, lab=True)
    from_yaml = hosts_of(write_yaml, "lab.yml", LAB_YAML, lab=True)
    assert from_ini == from_yaml
    assert [(h.name, h.roles, h.connection) for h in from_ini] == [
        ("h1", ("db",), "lab"),
        ("h2", ("server",), "lab"),
        ("h3", ("client",), "lab"),
    ]


def test_the_ini_and_yaml_forms_of_real_hosts_give_the_same_connections(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    extra = f", roles: {SSH_ROLES}"
    from_ini = hosts_of(write_yaml, "hosts.ini", SSH_INI, extra)
    from_yaml = hosts_of(write_yaml, "hosts.yaml", SSH_YAML, extra)
    assert from_ini == from_yaml
    db, web, client = from_ini
    assert (db.name, db.address, db.user, db.port) == ("db1", "192.0.2.10", "deploy", 22)
    assert (web.roles, web.address, web.port) == (("server",), "192.0.2.11", 2222)
    assert (client.roles, client.address, client.user) == (("client",), "cl1.example.org", "tester")
    # relative to the Ansible file's folder, as every path of an inventory is to its file
    assert web.key_file == tmp_path / "keys" / "id_ed25519"
    assert all(h.connection == "ssh" for h in from_ini)


def test_a_file_without_a_known_suffix_is_read_as_yaml_when_it_is_yaml_else_as_ini(
    app_dir: Path, write_yaml: Write
) -> None:
    extra = f", roles: {SSH_ROLES}"
    assert hosts_of(write_yaml, "hosts", SSH_YAML, extra) == hosts_of(
        write_yaml, "inventory", SSH_INI, extra
    )


def test_a_host_without_ansible_host_is_reached_by_its_name(
    app_dir: Path, write_yaml: Write
) -> None:
    text = (
        "[db]\ndb.example.org\n[server]\n192.0.2.7\n[client]\nlocalhost ansible_connection=local\n"
    )
    db, server, client = hosts_of(write_yaml, "hosts.ini", text)
    assert (db.address, server.address) == ("db.example.org", "192.0.2.7")
    assert (client.connection, client.address) == ("local", None)


def test_hosts_in_no_mapped_group_are_not_deployed(app_dir: Path, write_yaml: Write) -> None:
    text = SSH_INI + "[monitoring]\ngrafana ansible_host=192.0.2.99\n"
    names = [h.name for h in hosts_of(write_yaml, "hosts.ini", text, f", roles: {SSH_ROLES}")]
    assert names == ["db1", "web1", "cl1"]


def test_one_host_in_several_mapped_groups_plays_each_of_their_roles(
    app_dir: Path, write_yaml: Write
) -> None:
    text = "[box]\nallinone ansible_host=192.0.2.5\n"
    roles = ", roles: {db: box, server: box, client: box}"
    (host,) = hosts_of(write_yaml, "hosts.ini", text, roles)
    assert host.roles == ("db", "server", "client")


def test_the_inventory_keys_beside_ansible_apply_to_every_host_and_win(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    text = SSH_INI + "ansible_python_interpreter=/usr/bin/python3.9\n"
    extra = (
        f", roles: {SSH_ROLES}, known_hosts: keys/known_hosts, deploy_root: /srv/rdy,"
        " python: /opt/py/bin/python3"
    )
    hosts = hosts_of(write_yaml, "hosts.ini", text, extra)
    assert {h.known_hosts for h in hosts} == {tmp_path / "keys" / "known_hosts"}
    assert {h.deploy_root for h in hosts} == {"/srv/rdy"}
    assert {h.python for h in hosts} == {"/opt/py/bin/python3"}


def test_ansible_python_interpreter_is_used_unless_it_asks_ansible_to_find_one(
    app_dir: Path, write_yaml: Write
) -> None:
    text = (
        SSH_INI.replace(
            "ansible_port=2222", "ansible_port=2222 ansible_python_interpreter=auto_silent"
        )
        + "ansible_python_interpreter=/usr/bin/python3.11\n"
    )
    db, web, _ = hosts_of(write_yaml, "hosts.ini", text, f", roles: {SSH_ROLES}")
    assert (db.python, web.python) == ("/usr/bin/python3.11", "python3")


def test_an_interpreter_found_through_env_is_that_name_on_the_path(
    app_dir: Path, write_yaml: Write
) -> None:
    text = SSH_INI.replace(
        "ansible_port=2222",
        "ansible_port=2222 ansible_python_interpreter='/usr/bin/env python3.11'",
    )
    _, web, _ = hosts_of(write_yaml, "hosts.ini", text, f", roles: {SSH_ROLES}")
    assert web.python == "python3.11"
    with pytest.raises(ConfigError, match=r"web1\.ansible_python_interpreter"):
        hosts_of(
            write_yaml,
            "bad.ini",
            SSH_INI.replace(
                "ansible_port=2222",
                "ansible_port=2222 ansible_python_interpreter='/usr/bin/env -S python3'",
            ),
            f", roles: {SSH_ROLES}",
        )


def test_many_lines_of_one_large_range_are_refused_not_expanded_forever(tmp_path: Path) -> None:
    path = tmp_path / "big.ini"
    path.write_text("".join(f"[g{i}]\nh[0:999]\n" for i in range(25)))
    with pytest.raises(ConfigError) as info:
        parse(path)
    assert str(info.value).startswith(f"{path}, line 42: "), info.value
    assert "more than 20000 hosts in all" in str(info.value)


def test_the_older_variable_names_ansible_still_reads_are_honoured(
    app_dir: Path, write_yaml: Write
) -> None:
    text = "[db]\nh ansible_ssh_host=192.0.2.3 ansible_ssh_port=2200 ansible_ssh_user=old\n"
    text += "[server]\nh\n[client]\nh\n"
    (host,) = hosts_of(write_yaml, "hosts.ini", text)
    assert (host.address, host.port, host.user) == ("192.0.2.3", 2200, "old")


def test_host_keys_stay_strict_whatever_the_ansible_file_says(
    app_dir: Path, write_yaml: Write
) -> None:
    lax = SSH_INI + (
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        "ansible_ssh_extra_args=-oStrictHostKeyChecking=no\n"
        "ansible_host_key_checking=False\n"
    )
    extra = f", roles: {SSH_ROLES}"
    assert hosts_of(write_yaml, "lax.ini", lax, extra) == hosts_of(
        write_yaml, "strict.ini", SSH_INI, extra
    )


# --------------------------------------------------------------------------- INI details


def test_vars_of_a_child_group_beat_its_parents_and_a_hosts_own_beat_both(
    tmp_path: Path,
) -> None:
    hosts = parsed(
        tmp_path,
        "p.ini",
        """\
        [all:vars]
        ansible_user=from_all
        ansible_port=1001
        ansible_python_interpreter=/opt/all/python

        [parent:children]
        child

        [parent:vars]
        ansible_user=from_parent
        ansible_port=1002
        ansible_python_interpreter=/opt/parent/python

        [child]
        h1 ansible_port=1003

        [child:vars]
        ansible_user=from_child
        """,
    )
    assert hosts["h1"]["ansible_user"] == "from_child"
    assert hosts["h1"]["ansible_port"] == 1003
    assert hosts["h1"]["ansible_python_interpreter"] == "/opt/parent/python"


def test_groups_of_one_depth_are_ordered_by_priority_then_name(tmp_path: Path) -> None:
    text = "[alpha]\nh1\n[beta]\nh1\n[alpha:vars]\nansible_user=a\n[beta:vars]\nansible_user=b\n"
    assert parsed(tmp_path, "a.ini", text)["h1"]["ansible_user"] == "b"
    text += "[alpha:vars]\nansible_group_priority=10\n"
    assert parsed(tmp_path, "b.ini", text)["h1"]["ansible_user"] == "a"


def test_each_variable_remembers_the_line_that_set_it(tmp_path: Path) -> None:
    path = tmp_path / "l.ini"
    path.write_text("[db]\nh1 ansible_port=22\n\n[db:vars]\nansible_user=x\n")
    (host,) = parse(path).hosts
    assert (host.line, host.vars["ansible_port"].line, host.vars["ansible_user"].line) == (2, 2, 5)


def test_host_line_values_are_shell_quoted_and_group_vars_take_the_whole_line(
    tmp_path: Path,
) -> None:
    hosts = parsed(
        tmp_path,
        "q.ini",
        """\
        [g]
        h1 ansible_ssh_private_key_file="keys/my key" note='a b' # a comment
        h2 ansible_port=2222
        [g:vars]
        motd = 'spaces and # kept'
        plain = left as it is # not a comment in Ansible either
        """,
    )
    assert hosts["h1"]["ansible_ssh_private_key_file"] == "keys/my key"
    assert hosts["h1"]["note"] == "a b"
    assert hosts["h2"]["ansible_port"] == 2222  # a Python literal, as Ansible reads it
    assert hosts["h1"]["motd"] == "spaces and # kept"
    assert hosts["h1"]["plain"] == "left as it is # not a comment in Ansible either"


def test_comments_ungrouped_hosts_and_a_port_after_the_name(tmp_path: Path) -> None:
    path = tmp_path / "u.ini"
    path.write_text("; a comment\nlonely:2200\n# another\n[g]\nh1\n")
    inventory = parse(path)
    lonely, h1 = inventory.hosts
    assert lonely.groups == {"all", "ungrouped"} and lonely.vars["ansible_port"].value == 2200
    assert h1.groups == {"all", "g"}


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("web[01:03]", ["web01", "web02", "web03"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("x[1:7:3].lan", ["x1.lan", "x4.lan", "x7.lan"]),
        ("r[1:2]c[a:b]", ["r1ca", "r1cb", "r2ca", "r2cb"]),
        ("n[:2]", ["n0", "n1", "n2"]),
    ],
)
def test_host_ranges_are_expanded_as_ansible_expands_them(
    tmp_path: Path, pattern: str, names: list[str]
) -> None:
    assert list(parsed(tmp_path, "r.ini", f"[g]\n{pattern}\n")) == names
    assert list(parsed(tmp_path, "r.yml", f"g:\n  hosts:\n    '{pattern}':\n")) == names


def test_a_range_with_a_port_gives_each_host_that_port(tmp_path: Path) -> None:
    hosts = parsed(tmp_path, "p.ini", "[g]\nweb[1:2]:2222\n")
    assert {name: v["ansible_port"] for name, v in hosts.items()} == {"web1": 2222, "web2": 2222}


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("w[01:100]", "same width"),
        ("w[5:1]", "ends before it begins"),
        ("w[c:a]", "ends before it begins"),
        ("w[a:5]", "neither numbers nor letters"),
        ("w[1:3", "not a range"),
        ("w]1", "closes no range"),
        ("w[1:3:0]", "step of 0"),
        ("w[0:99999]", "too large"),
        ("w[0:99]x[0:99]", "more than 1000 hosts"),
        ("w:", "ends in ':'"),
    ],
)
def test_a_range_ansible_would_not_expand_sensibly_is_refused_with_its_line(
    tmp_path: Path, pattern: str, says: str
) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(f"[g]\nok\n{pattern}\n")
    with pytest.raises(ConfigError) as info:
        parse(path)
    assert str(info.value).startswith(f"{path}, line 3: "), info.value
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("[g:children]\nnowhere\n", 2, "[g:children] names group 'nowhere'"),
        ("[ghost:vars]\nx=1\n", 1, "[ghost:vars] names group 'ghost'"),
        ("[a:children]\nb\n[b:children]\na\n", 2, "groups cannot contain each other"),
        ("[a:children]\na\n", 2, "groups cannot contain each other"),
        ("[g:hostz]\n", 1, "unknown type"),
        ("[g g]\n", 1, "is not a section header"),
        ("[g]\nh1 ansible_port\n", 2, "expected key=value"),
        ("[g:vars]\njust words\n", 2, "expected key=value"),
        ("[g:children]\ntwo words\n", 2, "expected a group name"),
    ],
)
def test_ini_mistakes_are_refused_naming_file_and_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse(path)
    assert str(info.value).startswith(f"{path}, line {line}: "), info.value
    assert says in str(info.value)


def test_an_unclosed_quote_is_refused_without_echoing_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.ini"
    path.write_text("[g]\nh1 ansible_password='s3cr3t-TOKEN\n")
    with pytest.raises(ConfigError) as info:
        parse(path)
    assert str(info.value) == f"{path}, line 2: a quote is not closed on this host line"


# --------------------------------------------------------------------------- YAML details


def test_yaml_children_nest_and_vars_follow_the_same_precedence(tmp_path: Path) -> None:
    hosts = parsed(
        tmp_path,
        "n.yaml",
        """\
        all:
          vars: {ansible_user: from_all, ansible_port: 1001}
          children:
            parent:
              vars: {ansible_user: from_parent}
              children:
                child:
                  hosts:
                    h1: {ansible_port: 1003}
        """,
    )
    assert hosts["h1"]["ansible_user"] == "from_parent"
    assert hosts["h1"]["ansible_port"] == 1003


def test_ansible_own_yaml_tags_are_read_as_text(tmp_path: Path) -> None:
    hosts = parsed(
        tmp_path,
        "v.yml",
        """\
        all:
          hosts:
            h1:
              ansible_become_password: !vault |
                $ANSIBLE_VAULT;1.1;AES256
                6162636465
              motd: !unsafe '{{ not a template }}'
        """,
    )
    assert str(hosts["h1"]["ansible_become_password"]).startswith("$ANSIBLE_VAULT;")
    assert hosts["h1"]["motd"] == "{{ not a template }}"


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("all:\n  host:\n    h1:\n", 3, "unknown key 'host'"),
        ("- h1\n- h2\n", 1, "mapping of groups"),
        ("all:\n  hosts:\n    h1: 5\n", 3, "must be a mapping"),
        ("all:\n  hosts: [h1]\n", 2, "must be a mapping"),
        ("all: !!python/object:os.system\n", 1, "invalid YAML"),
    ],
)
def test_yaml_mistakes_are_refused_naming_file_and_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse(path)
    assert str(info.value).startswith(f"{path}, line {line}"), info.value
    assert says in str(info.value)


# --------------------------------------------------------------------------- group_vars, host_vars


def test_group_vars_and_host_vars_beside_the_file_are_layered_as_in_ansible(
    tmp_path: Path,
) -> None:
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "group_vars" / "all" / "main.yml").write_text("ansible_user: gv_all\nx: 1\n")
    (tmp_path / "group_vars" / "all" / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n00\n")
    (tmp_path / "group_vars" / "web.yaml").write_text("ansible_port: 2001\nx: 2\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "h2").write_text("# only comments\n")
    (tmp_path / "host_vars" / "h3.yml").write_text("ansible_port: 3001\n")
    hosts = parsed(
        tmp_path,
        "hosts.ini",
        """\
        [web]
        h1 ansible_port=1001
        h2
        h3 ansible_port=1003
        [web:vars]
        ansible_user=file_web
        x=3
        """,
    )
    # group_vars/ beat the file's group vars; the file's host vars beat group_vars/;
    # host_vars/ beat everything. From vars files only the variables readiness uses are
    # read (x stays the INI file's).
    assert hosts["h1"] == {"ansible_user": "gv_all", "x": 3, "ansible_port": 1001}
    assert hosts["h2"]["ansible_port"] == 2001
    assert hosts["h3"]["ansible_port"] == 3001


def test_a_value_from_group_vars_is_refused_naming_that_file_and_line(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    (tmp_path / "group_vars").mkdir()
    vars_file = tmp_path / "group_vars" / "all.yml"
    vars_file.write_text("# shared\nansible_user: 'root -o ProxyCommand=sh'\n")
    message = refused(inventory(write_yaml, "hosts.ini", SSH_INI, f", roles: {SSH_ROLES}"))
    assert message.startswith(f"{vars_file}, line 2, field 'db1.ansible_user': "), message


# --------------------------------------------------------------------------- refusals


HOSTILE = {
    "shell in ansible_host": (
        SSH_INI.replace("ansible_host=192.0.2.10", 'ansible_host="10.0.0.1; rm -rf /"'),
        2,
        "db1.ansible_host",
        "neither an IP address nor a host name",
    ),
    "options in ansible_user": (
        SSH_INI.replace("ansible_user=deploy", "ansible_user=root -o ProxyCommand=nc"),
        11,
        "db1.ansible_user",
        "not a valid user name",
    ),
    "port 0": (
        SSH_INI.replace("ansible_port=2222", "ansible_port=0"),
        5,
        "web1.ansible_port",
        "between 1 and 65535",
    ),
    "port 0 after the name": (
        SSH_INI.replace("cl1 ", "cl1:0 "),
        8,
        "cl1.ansible_port",
        "between 1 and 65535",
    ),
    "a port that is no number": (
        SSH_INI.replace("ansible_port=2222", "ansible_port=ssh"),
        5,
        "web1.ansible_port",
        "must be an integer",
    ),
    "wildcard address": (
        SSH_INI.replace("192.0.2.11", "0.0.0.0"),
        5,
        "web1.ansible_host",
        "wildcard",
    ),
    "a name that is no address": (
        SSH_INI.replace("cl1 ansible_host=cl1.example.org", "cl_1"),
        8,
        "cl_1.ansible_host",
        "neither an IP address nor a host name",
    ),
    "a bad host name": (
        SSH_INI.replace("db1 ", "db1;x "),
        2,
        "db1;x",
        "must be letters, digits",
    ),
    "interpreter with arguments": (
        SSH_INI + "ansible_python_interpreter=python3 -c 'import os'\n",
        13,
        "db1.ansible_python_interpreter",
        "not a plain interpreter name",
    ),
    "a key of an unknown user": (
        SSH_INI.replace("keys/id_ed25519", "~nosuchuser/id"),
        12,
        "db1.ansible_ssh_private_key_file",
        "a user this machine does not know",
    ),
    "a template": (
        SSH_INI.replace("ansible_host=192.0.2.10", "ansible_host=\"{{ lookup('pipe', 'id') }}\""),
        2,
        "db1.ansible_host",
        "does not evaluate templates",
    ),
    "a vault-encrypted value": (
        SSH_INI.replace("ansible_user=deploy", "ansible_user=$ANSIBLE_VAULT;1.1;AES256"),
        11,
        "db1.ansible_user",
        "does not decrypt",
    ),
    "another connection": (
        SSH_INI.replace("ansible_port=2222", "ansible_connection=docker"),
        5,
        "web1.ansible_connection",
        "by ssh or runs locally",
    ),
}


@pytest.mark.parametrize(("text", "line", "field", "says"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_ansible_value_is_refused_naming_the_file_line_and_variable(
    app_dir: Path, write_yaml: Write, tmp_path: Path, text: str, line: int, field: str, says: str
) -> None:
    message = refused(inventory(write_yaml, "hosts.ini", text, f", roles: {SSH_ROLES}"))
    assert message.startswith(f"{tmp_path / 'hosts.ini'}, line {line}, field '{field}': "), message
    assert says in message


def test_a_hostile_yaml_value_names_its_own_line(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    text = SSH_YAML.replace("ansible_port: 2222", "ansible_port: 0")
    message = refused(inventory(write_yaml, "hosts.yml", text, f", roles: {SSH_ROLES}"))
    assert message.startswith(f"{tmp_path / 'hosts.yml'}, line 11, field 'web1.ansible_port'")


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        (", deploy_root: /", "hosts.deploy_root", "system folder"),
        (", deploy_root: '/tmp/x; rm -rf /'", "hosts.deploy_root", "absolute path of letters"),
        (", python: 'py thon'", "hosts.python", "not a plain interpreter"),
        (", connection: telnet", "hosts.connection", "must be one of"),
        (", connection: lab", "hosts.connection", "no 'lab:' section"),
        (", known_hosts: ~nosuchuser/kh", "hosts.known_hosts", "does not know"),
        (", roles: {db: nope}", "hosts.roles.db", "group 'nope' is not in"),
        (", roles: {web: web}", "hosts.roles.web", "unknown key"),
        (", rolez: {}", "hosts.rolez", "unknown key"),
    ],
)
def test_a_bad_key_beside_ansible_is_refused_naming_the_inventory_line_and_field(
    app_dir: Path, write_yaml: Write, extra: str, field: str, says: str
) -> None:
    path = inventory(write_yaml, "hosts.ini", SSH_INI, extra)
    message = refused(path)
    assert message.startswith(f"{path}, line 1, field '{field}': "), message
    assert says in message


def test_a_deploy_root_shared_by_lab_hosts_is_refused(app_dir: Path, write_yaml: Write) -> None:
    path = inventory(write_yaml, "lab.ini", LAB_INI, ", deploy_root: /var/tmp/rdy/x", lab=True)
    assert "each gets a deploy root of its own" in refused(path)


def test_a_lab_inventory_names_lab_hosts_only(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    path = inventory(write_yaml, "lab.ini", LAB_INI.replace("h2", "web1"), lab=True)
    message = refused(path)
    assert message.startswith(f"{tmp_path / 'lab.ini'}, line 10, field 'web1': "), message
    assert "not a lab host name" in message
    path = inventory(
        write_yaml, "lab.ini", LAB_INI.replace("h2", "h2 ansible_host=10.0.0.9"), lab=True
    )
    assert "field 'h2.ansible_host': comes from the lab state" in refused(path)


def test_a_role_with_no_host_in_its_group_is_the_usual_error(
    app_dir: Path, write_yaml: Write
) -> None:
    path = inventory(write_yaml, "hosts.ini", SSH_INI)  # no group 'server', nor 'client'
    message = refused(path)
    assert message.startswith(f"{path}, line 1, field 'hosts': no host has the role 'server'")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: "missing.ini", "missing.ini: file not found"),
        (lambda tmp: str(tmp), "is not a regular file"),
        (lambda tmp: "/proc/self/environ", "is not a regular file"),
    ],
    ids=["missing", "a folder", "proc"],
)
def test_an_ansible_file_that_cannot_be_read_is_named_with_the_line_that_named_it(
    app_dir: Path, write_yaml: Write, tmp_path: Path, make: Callable[[Path], str], says: str
) -> None:
    path = write_yaml("inv.yaml", f"hosts: {{ansible: '{make(tmp_path)}'}}\n" + APPLICATION)
    message = refused(path)
    assert says in message
    assert f"(the Ansible inventory named by {path}, line 1, field 'hosts.ansible')" in message


def test_an_encrypted_or_binary_ansible_file_is_refused(tmp_path: Path) -> None:
    vault = tmp_path / "vault.ini"
    vault.write_text("$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    with pytest.raises(ConfigError, match="line 1: is encrypted with ansible-vault"):
        parse(vault)
    binary = tmp_path / "bin.ini"
    binary.write_bytes(b"[g]\nh1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="line 3: is not UTF-8 text"):
        parse(binary)


def test_an_unreadable_ansible_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "secret.ini"
    path.mkdir()  # unreadable as a file even for root (who reads any mode-0 file)
    with pytest.raises(ConfigError, match=r"secret\.ini: is not a regular file"):
        parse(path)


def test_hosts_for_gives_each_host_the_roles_of_its_groups(tmp_path: Path) -> None:
    path = tmp_path / "h.ini"
    path.write_text(LAB_INI)
    placed = hosts_for(parse(path), {"db": "db", "server": "app", "client": "client"})
    assert [(p.name, p.roles) for p in placed] == [
        ("h1", ("db",)),
        ("h2", ("server",)),
        ("h3", ("server", "client")),
    ]


def test_a_plan_of_an_ansible_inventory_shows_its_hosts(
    app_dir: Path, write_yaml: Write, tmp_path: Path
) -> None:
    from orchestrator.lifecycle import load_plan
    from orchestrator.plan import Options
    from tests.unit.conftest import SUITE

    write_yaml("suite.yaml", SUITE)
    path = inventory(write_yaml, "hosts.ini", SSH_INI, f", roles: {SSH_ROLES}")
    text = load_plan(tmp_path, str(path), str(tmp_path / "suite.yaml"), Options(dry_run=True))
    described = text.describe()
    for name in ("db1", "web1", "cl1"):
        assert name in described


# --------------------------------------------------------------------------- any text

FRAGMENTS = [
    "[g]", "[g:vars]", "[g:children]", "[h:children]", "[all:vars]", "[g g]", "g", "h", "h1",
    "web[01:03]", "w[1:", "w[a:5]", "x:22", "x:", "ansible_host=192.0.2.1", "ansible_port=0",
    "ansible_port='22'", "ansible_user=root", "ansible_user='a b'", "'unclosed", "=", "# c",
    "; c", "all:", "  hosts:", "    h1:", "  children:", "    g: {hosts: {h1: }}",
    "      ansible_host: x", "  vars: {ansible_port: [1]}", "!vault |", "$ANSIBLE_VAULT;1.1",
    "{{ x }}", "\t", "é", "[", "]", ":", "ansible_connection=docker",
    "ansible_group_priority=x", "ansible_python_interpreter=auto", "9" * 5000, "((((" * 300,
]  # fmt: skip
LINES = st.lists(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=3).map(" ".join), max_size=12
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=LINES, name=st.sampled_from(["hosts.ini", "hosts.yml", "hosts"]))
def test_any_ansible_file_is_read_or_refused_naming_a_file(
    app_dir: Path, write_yaml: Write, tmp_path: Path, lines: list[str], name: str
) -> None:
    """Whatever the Ansible file holds, readiness plans it or says which file is wrong:
    never an internal error (a traceback, exit 3)."""
    path = inventory(write_yaml, name, "\n".join(lines) + "\n", ", roles: {server: g, client: h}")
    try:
        load_inventory(path)
    except ConfigError as err:
        assert err.file in (str(path), str(tmp_path / name)), err
        assert "\n" not in str(err)


def test_a_teams_vars_files_full_of_other_yaml_never_refuse_the_inventory(tmp_path: Path) -> None:
    """group_vars are the team's whole Ansible configuration: integer keys, merge keys,
    yes: keys and duplicates (Ansible only warns) must not stop readiness reading the
    few variables it uses."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "base: &b {a: 1}\n"
        "firewall: {22: ssh, 443: https}\n"
        "merged: {<<: *b, c: 2}\n"
        "yes: true\n"
        "dup: 1\n"
        "dup: 2\n"
        "ansible_user: deploy\n"
    )
    hosts = parsed(tmp_path, "hosts.ini", "[web]\nh1\n")
    assert hosts["h1"] == {"ansible_user": "deploy"}
