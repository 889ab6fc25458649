"""Against a live server: run only when AGENTD_API_URL and AGENTD_API_KEY name one (an
owner's key of a fresh workspace). `cargo test -p agentd --test it client_sdks` starts a
server, signs up and runs this."""

from __future__ import annotations

import asyncio
import os
import unittest

from agentd_client import Client, Conflict, NotFound, Unauthorized

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "examples", "agents")
LIVE = bool(os.environ.get("AGENTD_API_URL") and os.environ.get("AGENTD_API_KEY"))
#: Generous: the machine running the tests may be loaded.
WAIT = 60


@unittest.skipUnless(LIVE, "set AGENTD_API_URL and AGENTD_API_KEY to run against a server")
class LiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = Client()
        cls.echo = cls.client.agents.deploy(os.path.join(EXAMPLES, "python-echo"), slug="py-echo")
        cls.ask = cls.client.agents.deploy(os.path.join(EXAMPLES, "python-ask"))

    def test_deploy_list_versions_rollback_and_delete(self):
        agents = self.client.agents
        self.assertEqual(self.echo["build"]["status"], "ready")
        self.assertIn("py-echo", [a["slug"] for a in agents.iter()])
        second = agents.deploy(os.path.join(EXAMPLES, "python-echo"), slug="py-echo", activate=False)
        self.assertEqual(agents.get("py-echo")["active_version"], self.echo["version"])
        self.assertEqual(agents.rollback("py-echo", second["version"])["active_version"], second["version"])
        self.assertEqual(agents.rollback("py-echo", self.echo["version"])["active_version"], self.echo["version"])
        versions = [v["version"] for v in agents.versions("py-echo")["data"]]
        self.assertEqual(versions[:2], [second["version"], self.echo["version"]])

        agents.deploy(os.path.join(EXAMPLES, "shell-wc"), slug="py-doomed")
        agents.delete("py-doomed")
        with self.assertRaises(NotFound):
            agents.get("py-doomed")

    def test_invoke_with_wait_follow_events_and_read_logs(self):
        run = self.client.invoke("py-echo", {"hello": "world"}, wait=WAIT)
        self.assertEqual((run["status"], run["output"]), ("succeeded", {"echo": {"hello": "world"}}))
        self.assertTrue(run["idempotency_key"].startswith("sdk-"))
        again = self.client.invoke("py-echo", {"hello": "world"}, idempotency_key=run["idempotency_key"])
        self.assertEqual(again["id"], run["id"])

        events = list(self.client.invocations.events(run["id"]))
        self.assertEqual(events[-1], {"kind": "end", "status": "succeeded", "error": None})
        seqs = [e["seq"] for e in events[:-1]]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertIn("output", [e["kind"] for e in events])
        tail = list(self.client.invocations.events(run["id"], after=seqs[-2]))
        self.assertEqual([e.get("seq") for e in tail], [seqs[-1], None])

        async def follow():
            return [e async for e in self.client.invocations.aevents(run["id"])]

        self.assertEqual(asyncio.run(follow()), events)
        logs = self.client.invocations.logs(run["id"])["data"]
        self.assertIn("echoing", [e["message"] for e in logs])
        self.assertEqual(self.client.invocations.get(run["id"])["status"], "succeeded")
        listed = self.client.invocations.list(agent="py-echo", status="succeeded", limit=200)["data"]
        self.assertIn(run["id"], [i["id"] for i in listed])

    def test_a_question_is_answered_while_following_and_the_run_finishes(self):
        run = self.client.invoke("python-ask", {}, input_timeout_s=300)
        answers = iter(["ada", "green"])
        kinds = []
        for event in self.client.invocations.events(run["id"]):
            kinds.append(event["kind"])
            if event["kind"] == "status" and (event.get("data") or {}).get("status") == "waiting_for_input":
                questions = self.client.invocations.interrupts(run["id"])["data"]
                self.assertIsNone(questions[-1]["answer"])
                self.client.respond(run["id"], next(answers))
            if event["kind"] == "end":
                self.assertEqual(event["status"], "succeeded")
        self.assertEqual(kinds.count("interrupt"), 2)
        done = self.client.invocations.get(run["id"])
        self.assertEqual((done["output"]["name"], done["output"]["color"]), ("ada", "green"))
        with self.assertRaises(Conflict) as caught:
            self.client.respond(run["id"], "late")
        self.assertEqual(caught.exception.code, "not_waiting")

    def test_respond_with_wait_holds_a_conversation(self):
        run = self.client.invoke("python-ask", None, wait=WAIT)
        self.assertEqual(run["status"], "waiting_for_input")
        run = self.client.respond(run["id"], "bob", wait=WAIT)
        self.assertEqual(run["status"], "waiting_for_input")
        self.assertEqual(self.client.invocations.interrupts(run["id"])["data"][-1]["value"],
                         {"question": "favourite colour, bob?"})
        run = self.client.invocations.respond(run["id"], "red", wait=WAIT)
        self.assertEqual((run["status"], run["output"]["color"]), ("succeeded", "red"))

    def test_cancel(self):
        self.client.agents.deploy(os.path.join(EXAMPLES, "shell-sleep"), slug="py-sleep")
        run = self.client.invoke("py-sleep", {"seconds": 120})
        self.client.invocations.cancel(run["id"])
        # A running one may still be stopping when cancel answers: wait for the end.
        self.assertEqual(self.client.invocations.wait(run["id"], timeout=WAIT)["status"], "cancelled")
        self.assertEqual(list(self.client.invocations.events(run["id"]))[-1]["status"], "cancelled")

    def test_threads(self):
        threads = self.client.threads
        thread = threads.create(agent="py-echo", metadata={"user": "ada"})
        self.assertEqual(threads.get(thread["id"])["status"], "idle")
        run = self.client.invoke("py-echo", {"n": 1}, thread_id=thread["id"], wait=WAIT)
        self.assertEqual(run["thread_id"], thread["id"])
        found = threads.list(metadata={"user": "ada"})["data"]
        self.assertIn(thread["id"], [t["id"] for t in found])
        self.assertEqual(threads.set_state(thread["id"], {"count": 3})["state"], {"count": 3})
        self.assertEqual(threads.state(thread["id"])["state"], {"count": 3})
        history = threads.history(thread["id"])["data"]
        self.assertEqual(history[0]["state"], {"count": 3})
        self.assertEqual(threads.update(thread["id"], {"user": None, "topic": "x"})["metadata"], {"topic": "x"})
        threads.delete(thread["id"])
        with self.assertRaises(NotFound):
            threads.get(thread["id"])

    def test_keys_are_created_used_and_revoked(self):
        created = self.client.keys.create("sdk-read", scopes=["read"])
        self.assertTrue(created["secret"].startswith("agd_"))
        reader = Client(api_key=created["secret"])
        self.assertEqual(reader.me()["scopes"], ["read"])
        self.assertIn(created["id"], [k["id"] for k in self.client.keys.list()["data"]])
        self.assertIsNotNone(self.client.keys.revoke(created["id"])["revoked_at"])
        with self.assertRaises(Unauthorized) as caught:
            reader.agents.list()
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "unauthorized"))

    def test_a_missing_resource_is_a_typed_404_with_its_code(self):
        with self.assertRaises(NotFound) as caught:
            self.client.invocations.get("inv_" + "0" * 32)
        e = caught.exception
        self.assertEqual((e.status, e.code), (404, "not_found"))
        self.assertTrue(e.request_id.startswith("req_"))
        with self.assertRaises(NotFound):
            self.client.invoke("no-such-agent", {})


if __name__ == "__main__":
    unittest.main()
