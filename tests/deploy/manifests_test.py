#!/usr/bin/python3
"""Checks deploy/kubernetes/ against kvmt-server: the server starts with the Deployment's
arguments (model and addresses moved to this machine) and drains on SIGTERM, the probes and the
Service point at the port it listens on, and the time and memory budgets add up.

Usage: manifests_test.py KVMT_SERVER_BIN DEPLOY_DIR SHARED_DIR
"""

import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

SERVER_BIN = ""
DEPLOY_DIR = ""
SHARED_DIR = ""


def quantity_mib(text):
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", str(text))
    if not match:
        raise ValueError(f"unsupported memory quantity {text!r}")
    return int(match.group(1)) * units[match.group(2)]


class ManifestsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(f"{DEPLOY_DIR}/kubernetes/deployment.yaml", encoding="utf-8") as f:
            cls.deployment = yaml.safe_load(f)
        with open(f"{DEPLOY_DIR}/kubernetes/service.yaml", encoding="utf-8") as f:
            cls.service = yaml.safe_load(f)
        cls.pod = cls.deployment["spec"]["template"]["spec"]
        (cls.container,) = cls.pod["containers"]
        cls.args = {}
        for arg in cls.container["args"]:
            name, _, value = arg.partition("=")
            cls.args[name] = value
        cls.help = subprocess.run([SERVER_BIN, "--help"], capture_output=True, text=True,
                                  timeout=30, check=True).stdout

    def test_every_argument_is_a_server_flag(self):
        for name in self.args:
            self.assertRegex(self.help, rf"(?m)^\s+{re.escape(name)}$",
                             f"{name} is not a kvmt-server flag")

    def test_server_starts_with_the_arguments_and_drains(self):
        mount = self.container["volumeMounts"][0]["mountPath"]
        args = []
        for arg in self.container["args"]:
            name, _, value = arg.partition("=")
            if name == "--model":
                value = value.replace(mount, f"{SHARED_DIR}/models", 1)
            elif name in ("--listen", "--metrics-listen"):
                value = "127.0.0.1:0"
            args.append(f"{name}={value}")
        with tempfile.TemporaryFile(mode="w+") as log:
            server = subprocess.Popen([SERVER_BIN] + args, stdout=subprocess.DEVNULL, stderr=log)
            try:
                give_up = time.monotonic() + 30
                text = ""
                while " serving\n" not in text and server.poll() is None:
                    self.assertLess(time.monotonic(), give_up, f"no 'serving' in:\n{text}")
                    time.sleep(0.05)
                    log.seek(0)
                    text = log.read()
                self.assertIsNone(server.poll(), f"kvmt-server exited:\n{text}")
                server.send_signal(signal.SIGTERM)
                self.assertEqual(server.wait(timeout=30), 0)
            finally:
                if server.poll() is None:
                    server.kill()
                    server.wait()

    def test_probes_and_service_use_the_grpc_port(self):
        port = int(self.args["--listen"].rpartition(":")[2])
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        self.assertEqual(ports["grpc"], port)
        self.assertEqual(ports["metrics"], int(self.args["--metrics-listen"].rpartition(":")[2]))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(self.container[probe]["grpc"]["port"], port, probe)
        annotations = self.deployment["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(int(annotations["prometheus.io/port"]), ports["metrics"])

    def test_headless_service_selects_the_pods(self):
        spec = self.service["spec"]
        self.assertEqual(spec["clusterIP"], "None")
        labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        for key, value in spec["selector"].items():
            self.assertEqual(labels.get(key), value)
        self.assertEqual(self.deployment["spec"]["selector"]["matchLabels"], spec["selector"])
        (port,) = spec["ports"]
        self.assertEqual(port["targetPort"], "grpc")

    def test_termination_grace_covers_pre_stop_and_drain(self):
        pre_stop = self.container["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = float(self.args["--shutdown-grace-seconds"])
        self.assertGreater(self.pod["terminationGracePeriodSeconds"], pre_stop + drain)

    def test_resources_match_the_flags(self):
        resources = self.container["resources"]
        limit = quantity_mib(resources["limits"]["memory"])
        self.assertGreaterEqual(limit, int(self.args["--cache-memory-mb"]) + 64)
        self.assertEqual(resources["requests"], resources["limits"])
        self.assertEqual(float(resources["limits"]["cpu"]), float(self.args["--threads"]))

    def test_models_are_mounted_read_only(self):
        (mount,) = self.container["volumeMounts"]
        self.assertTrue(mount["readOnly"])
        self.assertTrue(self.args["--model"].startswith(mount["mountPath"] + "/"))
        (volume,) = self.pod["volumes"]
        self.assertEqual(volume["name"], mount["name"])
        self.assertTrue(volume["persistentVolumeClaim"]["readOnly"])


if __name__ == "__main__":
    SERVER_BIN, DEPLOY_DIR, SHARED_DIR = sys.argv[1:4]
    unittest.main(argv=sys.argv[:1], verbosity=2)
