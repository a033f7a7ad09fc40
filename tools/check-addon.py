#!/usr/bin/python3
"""check-addon.py - check the Home Assistant add-on files against the Supervisor's rules.

The Supervisor silently skips an add-on whose config.yaml it cannot validate, so the
rules it applies (supervisor addons/validate.py and addons/options.py) are checked
here: required keys, version and slug format, arch values, services and map entries,
every schema element, every option has a schema entry (and a value of its type),
every required schema entry has a default, translations and repository.yaml.

Usage: tools/check-addon.py [ADDON_DIR]   (default addon/panda2mqtt); exit 0 if clean.
Python 3 stdlib + python3-yaml. Also imported by tests/addon/test_addon.py.
"""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# supervisor/addons/options.py RE_SCHEMA_ELEMENT
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool|email|url|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
RE_SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
RE_SERVICE = re.compile(r"^(?:mqtt|mysql):(?:provide|want|need)$")
RE_VOLUME = re.compile(
    r"^(?:data|config|ssl|addons|backup|share|media|homeassistant_config|"
    r"all_addon_configs|addon_config)(?::(?:rw|ro))?$")
RE_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
ARCHES = {"aarch64", "amd64", "armhf", "armv7", "i386"}
REQUIRED = ("name", "version", "slug", "description", "arch")
BOOLEAN_KEYS = ("init", "host_network", "host_dbus", "hassio_api", "homeassistant_api",
                "ingress", "stdin", "tmpfs", "full_access", "privileged_mode")


def _check_value(where, element, value, errors):
    """A default value against its schema element (types only, like the Supervisor)."""
    m = RE_SCHEMA_ELEMENT.match(element)
    kind = element.rstrip("?").split("(")[0]
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "port": lambda v: isinstance(v, int) and 1 <= v <= 65535,
    }.get(kind, lambda v: isinstance(v, str))(value)
    if not ok:
        errors.append(f"{where}: {value!r} does not fit {element!r}")
        return
    if kind == "int" and (m.group("i_min") or m.group("i_max")):
        lo, hi = m.group("i_min"), m.group("i_max")
        if (lo and value < int(lo)) or (hi and value > int(hi)):
            errors.append(f"{where}: {value} is outside {element}")
    if kind == "list" and value not in m.group("list").split("|"):
        errors.append(f"{where}: {value!r} is not one of {m.group('list')}")
    if kind == "match" and not re.match(m.group("match"), value):
        errors.append(f"{where}: {value!r} does not match {m.group('match')}")


def _check_element(where, element, errors):
    if not isinstance(element, str) or not RE_SCHEMA_ELEMENT.match(element):
        errors.append(f"{where}: {element!r} is not a schema type")
        return
    m = RE_SCHEMA_ELEMENT.match(element)
    if m.group("match") is not None:
        try:
            re.compile(m.group("match"))
        except re.error as e:
            errors.append(f"{where}: bad regular expression: {e}")


def _check_schema(where, schema, options, errors, depth=0):
    """schema: dict of elements, lists of one element or dict, or nested dicts."""
    if not isinstance(schema, dict):
        errors.append(f"{where}: schema must be a mapping")
        return
    options = options if isinstance(options, dict) else {}
    for key in options:
        if key not in schema:
            errors.append(f"{where}.{key}: option has no schema entry")
    for key, element in schema.items():
        here = f"{where}.{key}"
        value = options.get(key)
        if isinstance(element, dict):
            if depth >= 1:
                errors.append(f"{here}: the Supervisor allows one level of nesting")
            _check_schema(here, element, value, errors, depth + 1)
        elif isinstance(element, list):
            if len(element) != 1:
                errors.append(f"{here}: a list schema has exactly one entry")
                continue
            item = element[0]
            if value is not None and not isinstance(value, list):
                errors.append(f"{here}: default must be a list")
            if isinstance(item, dict):
                for k, e in item.items():
                    _check_element(f"{here}[].{k}", e, errors)
                for i, v in enumerate(value or []):
                    _check_schema(f"{here}[{i}]", item, v, errors, depth + 1)
            else:
                _check_element(f"{here}[]", item, errors)
        else:
            _check_element(here, element, errors)
            if not isinstance(element, str):
                continue
            if key not in options:
                if not element.endswith("?") and depth < 2:
                    errors.append(f"{here}: required by the schema but has no default")
            else:
                _check_value(here, element, value, errors)


def check_config(cfg):
    """Return a list of problems with a parsed config.yaml (empty when fine)."""
    errors = []
    if not isinstance(cfg, dict):
        return ["config.yaml is not a mapping"]
    for key in REQUIRED:
        if cfg.get(key) in (None, "", []):
            errors.append(f"{key}: required")
    if "version" in cfg and not (isinstance(cfg["version"], str)
                                 and RE_VERSION.match(cfg["version"])):
        errors.append(f"version: {cfg['version']!r} must be a quoted x.y.z string")
    if "slug" in cfg and not RE_SLUG.match(str(cfg["slug"])):
        errors.append(f"slug: {cfg['slug']!r} has characters outside [-_.A-Za-z0-9]")
    arch = cfg.get("arch")
    if not isinstance(arch, list) or not set(arch) <= ARCHES:
        errors.append(f"arch: {arch!r} must be a list of {sorted(ARCHES)}")
    for key in BOOLEAN_KEYS:
        if key in cfg and not isinstance(cfg[key], bool):
            errors.append(f"{key}: must be true or false")
    for s in cfg.get("services", []) or []:
        if not RE_SERVICE.match(str(s)):
            errors.append(f"services: {s!r} is not mqtt|mysql:provide|want|need")
    for v in cfg.get("map", []) or []:
        if not RE_VOLUME.match(str(v)):
            errors.append(f"map: {v!r} is not a known folder[:rw|ro]")
    options, schema = cfg.get("options", {}), cfg.get("schema", {})
    if not isinstance(options, dict):
        errors.append("options: must be a mapping")
        options = {}
    if schema is not False:
        _check_schema("options", schema, options, errors)
    for key, value in cfg.items():
        if value is None:
            errors.append(f"{key}: explicit null (the Supervisor rejects the file)")
    return errors


def check_addon(addon_dir):
    """Check config.yaml, translations/*.yaml and ../../repository.yaml."""
    addon_dir = Path(addon_dir)
    errors = []
    cfg = yaml.safe_load((addon_dir / "config.yaml").read_text(encoding="utf-8"))
    errors += [f"config.yaml: {e}" for e in check_config(cfg)]
    schema = cfg.get("schema") or {} if isinstance(cfg, dict) else {}
    for tr in sorted((addon_dir / "translations").glob("*.yaml")):
        data = yaml.safe_load(tr.read_text(encoding="utf-8")) or {}
        for key, entry in (data.get("configuration") or {}).items():
            if key not in schema:
                errors.append(f"{tr.name}: {key}: not an option")
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                errors.append(f"{tr.name}: {key}: needs a name")
        for key in schema:
            if key not in (data.get("configuration") or {}):
                errors.append(f"{tr.name}: {key}: no translation")
    for name in ("Dockerfile", "DOCS.md", "README.md", "build.yaml"):
        if not (addon_dir / name).is_file():
            errors.append(f"{name}: missing")
    repo = addon_dir.resolve().parent.parent / "repository.yaml"
    if repo.is_file():
        data = yaml.safe_load(repo.read_text(encoding="utf-8")) or {}
        for key in ("name", "url", "maintainer"):
            if not data.get(key):
                errors.append(f"repository.yaml: {key}: required")
    else:
        errors.append("repository.yaml: missing at the repository root")
    return errors


def main(argv):
    addon_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "addon" / "panda2mqtt"
    errors = check_addon(addon_dir)
    for e in errors:
        print(f"{addon_dir}: {e}", file=sys.stderr)
    print(f"check-addon: {addon_dir}: {'OK' if not errors else f'{len(errors)} problem(s)'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
