"""The documentation against the code it describes, and against itself.

- panda2mqtt.ini(5) is the one configuration reference: every key of every section in
  src/config.c's key tables is described in its section there, with the default the table
  gives; README.md points there and repeats no reference table.
- README.md's two set-up commands exist, and .ci/run runs the second.
- Every relative link in the project's Markdown files leads to a file that exists, and an
  anchor to a heading of that file.

Run: /usr/bin/python3 -m unittest discover -v -s tests/docs   (no build needed)
"""
import os
import re
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as f:
        return f.read()


def config_keys():
    """{section: [(key, kind, default or None)]} from src/config.c's key tables."""
    src = read("src", "config.c")
    tables = {}
    for m in re.finditer(r"static const struct key_def (\w+)\[\] = \{(.*?)\n\};", src, re.S):
        rows = re.findall(r'\{"(\w+)", (K_\w+), .*?, (NULL|"[^"]*")\}', m.group(2))
        tables[m.group(1)] = [(k, kind, None if d == "NULL" else d.strip('"'))
                              for k, kind, d in rows]
    sections = dict(re.findall(r'\[SEC_\w+\] = \{"(\w+)", (\w+),', src))
    return {name: tables[table] for name, table in sections.items()}


def man_sections(text):
    """{section name: its lines} of a man page's .SH [name] sections."""
    out, name = {}, None
    for line in text.splitlines():
        m = re.match(r"\.SH \[(\w+)", line)
        if m:
            name = m.group(1)
            out[name] = []
        elif line.startswith(".SH "):
            name = None
        elif name:
            out[name].append(line)
    return out


class ConfigurationReference(unittest.TestCase):
    def test_every_key_is_in_the_man_page_with_its_default(self):
        man = man_sections(read("docs", "man", "panda2mqtt.ini.5"))
        keys = config_keys()
        self.assertGreaterEqual(len(keys), 8, "the key tables were not found in config.c")
        for section, rows in keys.items():
            self.assertIn(section, man, f"no .SH [{section}] in panda2mqtt.ini.5")
            lines = man[section]
            for key, kind, default in rows:
                with self.subTest(section=section, key=key):
                    named = [ln for ln in lines if re.match(r"\.(B|BR|BI)\s", ln)
                             and re.search(rf'(^|[\s"]){key}\b', ln[3:])]
                    self.assertTrue(named, f"[{section}] {key} is not in panda2mqtt.ini.5")
                    # where the key heads its own paragraph, the default is the table's
                    head = [ln for ln in named if re.match(rf'\.(B|BR|BI)\s+"?{key}\b', ln)]
                    head.sort(key=lambda ln: "(default" not in ln)  # its own paragraph first
                    want = default if default is not None else {
                        "K_BOOL": "false", "K_INT": "0", "K_DOUBLE": "0"}.get(kind)
                    if head and want is not None and "(default" in head[0]:
                        self.assertRegex(head[0], rf"\(default {re.escape(want)}(\W|$)",
                                         f"[{section}] {key}: config.c's default is {want}")
                    elif head and want is not None and want not in ("0", "false"):
                        self.fail(f"[{section}] {key}: no '(default {want})' in "
                                  f"panda2mqtt.ini.5: {head[0]}")

    def test_readme_points_to_the_reference_and_repeats_no_table(self):
        readme = read("README.md")
        self.assertIn("docs/man/panda2mqtt.ini.5", readme)
        self.assertNotRegex(readme, r"(?m)^\| *key *\| *default *\|",
                            "a configuration table in README.md: it belongs in "
                            "panda2mqtt.ini(5)")
        self.assertNotRegex(readme, r"(?m)^#+ .*`\[(mqtt|device|dialin|safety)",
                            "a configuration section in README.md")


class SetUpCommands(unittest.TestCase):
    def test_the_readme_commands_exist_and_ci_runs_the_test_command(self):
        readme = read("README.md")
        for command in ("tools/demo.sh", "tools/run-tests.sh"):
            with self.subTest(command=command):
                self.assertRegex(readme, rf"(?m)^{re.escape(command)}$",
                                 f"README.md does not give {command} as a command")
                self.assertTrue(os.access(os.path.join(ROOT, command), os.X_OK),
                                f"{command} is not executable")
        self.assertRegex(read(".ci", "run"), r"(?m)^exec tools/run-tests\.sh$")


def slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def markdown_files():
    skip = {".git", "node_modules", "build"}
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith("build")]
        for f in files:
            if f.endswith(".md"):
                yield os.path.join(top, f)


def headings_and_links(path):
    """The anchors of a Markdown file's headings, and its links outside code."""
    anchors, links, fenced = set(), [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                continue
            m = re.match(r"#{1,6} (.*)", line)
            if m:
                anchors.add(slug(m.group(1)))
            line = re.sub(r"`[^`]*`", "", line)  # inline code holds no links
            links += re.findall(r"\]\(([^)\s]+)\)", line)
    return anchors, links


class Links(unittest.TestCase):
    def test_relative_links_and_anchors_resolve(self):
        files = list(markdown_files())
        self.assertGreater(len(files), 10)
        for path in files:
            _, links = headings_and_links(path)
            for link in links:
                if re.match(r"[a-z]+:", link):
                    continue  # https:, mailto:
                with self.subTest(file=os.path.relpath(path, ROOT), link=link):
                    target, _, anchor = link.partition("#")
                    full = os.path.normpath(os.path.join(os.path.dirname(path), target)) \
                        if target else path
                    self.assertTrue(full.startswith(ROOT + os.sep) or full == ROOT,
                                    "a link out of the repository")
                    self.assertTrue(os.path.exists(full), f"{full} does not exist")
                    if anchor and full.endswith(".md"):
                        anchors, _ = headings_and_links(full)
                        self.assertIn(anchor, anchors,
                                      f"no heading with anchor #{anchor} in {target or 'it'}")


if __name__ == "__main__":
    unittest.main()
