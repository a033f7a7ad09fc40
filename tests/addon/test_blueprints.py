"""Checks of the shipped Home Assistant YAML: the blueprints and the dashboard card.

Parses them with python3-yaml (a loader that knows Home Assistant's !input tag) and
checks what Home Assistant would refuse: a blueprint header with name, domain and
inputs, every !input naming a declared input and every input used, defaults inside
their selector's range, only known actions; the card's entity ids well formed.
Run: python3 -m unittest discover -v -s tests/addon
"""
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINTS = sorted((ROOT / "blueprints" / "automation" / "panda2mqtt").glob("*.yaml"))
CARD = ROOT / "docs" / "dashboard-card.yaml"
KNOWN_ACTIONS = {"climate.set_temperature", "climate.set_hvac_mode", "{{ notify_service }}"}


class Input(str):
    """The name inside an !input tag."""


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!input", lambda loader, node: Input(loader.construct_scalar(node)))


def walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


class BlueprintTest(unittest.TestCase):
    def test_there_are_two(self):
        self.assertEqual([p.name for p in BLUEPRINTS],
                         ["dry_filament_overnight.yaml", "heat_chamber_while_printing.yaml"])

    def test_blueprints(self):
        for path in BLUEPRINTS:
            with self.subTest(path.name):
                doc = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
                bp = doc["blueprint"]
                self.assertTrue(bp["name"])
                self.assertEqual(bp["domain"], "automation")
                inputs = bp["input"]
                used = {n for n in walk({k: v for k, v in doc.items() if k != "blueprint"})
                        if isinstance(n, Input)}
                self.assertEqual(used - set(inputs), set(), "undeclared !input")
                self.assertEqual(set(inputs) - used, set(), "input never used")
                for name, spec in inputs.items():
                    self.assertIn("selector", spec, name)
                    number = spec["selector"].get("number")
                    if number and "default" in spec:
                        self.assertLessEqual(number["min"], spec["default"], name)
                        self.assertLessEqual(spec["default"], number["max"], name)
                self.assertTrue(doc["trigger"])
                actions = {n["service"] for n in walk(doc["action"])
                           if isinstance(n, dict) and "service" in n}
                self.assertLessEqual(actions, KNOWN_ACTIONS)
                self.assertIn("climate.set_hvac_mode", actions)
                for n in walk(doc):
                    if isinstance(n, dict) and n.get("service") == "climate.set_temperature":
                        self.assertIn(n["data"]["hvac_mode"], {"heat", "dry"})

    def test_dry_blueprint_sets_dry_and_notifies_on_leaving_it(self):
        doc = yaml.load(BLUEPRINTS[0].read_text(encoding="utf-8"), Loader=Loader)
        leave = [t for t in doc["trigger"] if t.get("from") == "dry"]
        self.assertEqual(len(leave), 1)
        self.assertEqual(set(doc["blueprint"]["input"]),
                         {"climate_entity", "drying_temperature", "drying_hours",
                          "start_time", "notify_service"})


class DashboardCardTest(unittest.TestCase):
    def test_card(self):
        card = yaml.safe_load(CARD.read_text(encoding="utf-8"))
        self.assertEqual(card["type"], "vertical-stack")
        ids = [n["entity"] for n in walk(card) if isinstance(n, dict) and "entity" in n]
        self.assertIn("climate.panda_breath", ids)
        for i in ids:
            self.assertRegex(i, r"^(climate|sensor|binary_sensor|select|switch)\.panda_breath[a-z_]*$")


if __name__ == "__main__":
    unittest.main()
