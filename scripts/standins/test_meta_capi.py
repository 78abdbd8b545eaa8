#!/usr/bin/env python3
"""Tests for scripts/standins/meta_capi.py (stdlib unittest + urllib).

Run: python3 scripts/standins/test_meta_capi.py
"""

import copy
import json
import os
import socket
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import standin_server

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "meta_capi.py")
TOKEN = "test-token-abc"
PIXEL = "1234567890123"
VERSION = "v21.0"

# The Purchase example from Meta's "Using the API" page
# (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api).
# Only event_time (set to "now" per test) and the $CLIENT_USER_AGENT placeholder
# are adapted; the pixel id and token go in the URL.
DOC_PURCHASE = {
    "event_name": "Purchase",
    "event_time": 0,
    "user_data": {
        "em": ["309a0a5c3e211326ae75ca18196d301a9bdbd1a882a4d2569511033da23f0abd"],
        "ph": [
            "254aa248acb47dd654ca3ea53f48c2c26d641d23d7e2e93a1ec56258df7674c4",
            "6f4fcb9deaeadc8f9746ae76d97ce1239e98b404efe5da3ee0b7149740f89ad6",
        ],
        "client_ip_address": "123.123.123.123",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                             "Chrome/126.0 Safari/537.36",
        "fbc": "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
        "fbp": "fb.1.1558571054389.1098115397",
    },
    "custom_data": {
        "currency": "usd",
        "value": 123.45,
        "contents": [{"id": "product123", "quantity": 1, "delivery_category": "home_delivery"}],
    },
    "event_source_url": "http://jaspers-market.com/product/123",
    "action_source": "website",
}


def purchase(**overrides):
    ev = copy.deepcopy(DOC_PURCHASE)
    ev["event_time"] = int(time.time())
    ev.update(overrides)
    return ev


class MetaCapiStandinTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.base = standin_server.start(STANDIN, "--access-token", TOKEN, "--access-token", "second-token")

    @classmethod
    def tearDownClass(cls):
        standin_server.stop(cls.proc)

    def setUp(self):
        self.call("POST", "/_standin/reset", {})

    # -- helpers ----------------------------------------------------------

    def call(self, method, path, body=None, raw=None, ctype="application/json", timeout=10):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read().decode())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read().decode())

    def send(self, events, token=TOKEN, extra=None, raw=None):
        path = "/%s/%s/events?access_token=%s" % (VERSION, PIXEL, urllib.parse.quote(token))
        body = {"data": events}
        body.update(extra or {})
        return self.call("POST", path, body, raw=raw)

    def recorded(self):
        return self.call("GET", "/_standin/events")[1]

    def assertRefused(self, status, body, *needles, code=100):
        self.assertEqual(status, 400, body)
        err = body["error"]
        self.assertEqual(err["type"], "OAuthException")
        self.assertEqual(err["code"], code, err)
        self.assertTrue(err["fbtrace_id"])
        for needle in needles:
            self.assertIn(needle, err["message"])
        self.assertEqual(self.recorded()["events"], [], "a refused batch must record nothing")

    # -- accepted ---------------------------------------------------------

    def test_documented_purchase_is_accepted_and_value_text_kept(self):
        status, body = self.send([purchase()])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["events_received"], 1)
        self.assertEqual(body["messages"], [])
        self.assertTrue(body["fbtrace_id"])
        rec = self.recorded()
        self.assertEqual(len(rec["events"]), 1)
        self.assertEqual(rec["events"][0]["pixel_id"], PIXEL)
        self.assertEqual(rec["events"][0]["value_text"], "123.45")
        self.assertEqual(rec["events"][0]["event"]["custom_data"]["currency"], "usd")
        self.assertIsNone(rec["events"][0]["test_event_code"])

    def test_value_text_is_exact_for_numbers_and_strings(self):
        raw = ('{"data":[%s,%s],"test_event_code":"TEST123"}' % (
            json.dumps(purchase(event_id="a")).replace('"value": 123.45', '"value": 506.63'),
            json.dumps(purchase(event_id="b")).replace('"value": 123.45', '"value": "19.90"')))
        status, body = self.send(None, raw=raw.encode())
        self.assertEqual(status, 200, body)
        texts = [e["value_text"] for e in self.recorded()["events"]]
        self.assertEqual(texts, ["506.63", "19.90"])
        self.assertEqual(self.recorded()["events"][0]["test_event_code"], "TEST123")

    def test_form_encoded_body_as_in_the_docs(self):
        form = urllib.parse.urlencode({"data": json.dumps([purchase()]), "access_token": TOKEN}).encode()
        status, body = self.call("POST", "/%s/%s/events" % (VERSION, PIXEL), raw=form,
                                 ctype="application/x-www-form-urlencoded")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["events_received"], 1)

    def test_multipart_body_like_curl_dash_F(self):
        boundary = "xYzBoundary"
        parts = []
        for name, value in (("data", json.dumps([purchase()])), ("access_token", TOKEN)):
            parts.append('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
                boundary, name, value))
        raw = ("".join(parts) + "--%s--\r\n" % boundary).encode()
        status, body = self.call("POST", "/%s/%s/events" % (VERSION, PIXEL), raw=raw,
                                 ctype="multipart/form-data; boundary=%s" % boundary)
        self.assertEqual(status, 200, body)

    # -- refused ----------------------------------------------------------

    def test_unhashed_email_is_refused(self):
        ev = purchase()
        ev["user_data"]["em"] = ["john_smith@gmail.com"]
        status, body = self.send([ev])
        self.assertRefused(status, body, "data[0].user_data.em[0]", "SHA-256")

    def test_missing_action_source_is_refused(self):
        ev = purchase()
        del ev["action_source"]
        status, body = self.send([purchase(), ev])
        self.assertRefused(status, body, "data[1].action_source")

    def test_event_time_eight_days_old_is_refused(self):
        status, body = self.send([purchase(event_time=int(time.time()) - 8 * 24 * 3600)])
        self.assertRefused(status, body, "data[0].event_time")
        self.assertEqual(body["error"]["error_subcode"], 2804003)

    def test_event_time_in_the_future_is_refused(self):
        status, body = self.send([purchase(event_time=int(time.time() * 1000))])
        self.assertRefused(status, body, "data[0].event_time", "future")

    def test_more_than_1000_events_is_refused(self):
        events = [purchase(event_id="e%d" % i) for i in range(1001)]
        status, body = self.send(events)
        self.assertRefused(status, body, "data", "1001", "1000")

    def test_wrong_access_token_is_refused_with_code_190(self):
        status, body = self.send([purchase()], token="not-a-token")
        self.assertRefused(status, body, "access token", code=190)

    def test_missing_access_token_is_refused(self):
        status, body = self.call("POST", "/%s/%s/events" % (VERSION, PIXEL), {"data": [purchase()]})
        self.assertRefused(status, body, "access token", code=104)

    def test_unknown_event_key_is_refused(self):
        status, body = self.send([purchase(advertiser_tracking_enabled=True)])
        self.assertRefused(status, body, "data[0].advertiser_tracking_enabled", "Unexpected key")

    def test_unknown_body_key_is_refused(self):
        status, body = self.send([purchase()], extra={"debug": "1"})
        self.assertRefused(status, body, "debug")

    def test_documented_optional_event_keys_are_accepted(self):
        ev = purchase(opt_out=False, event_id="order-9", data_processing_options=["LDU"],
                      data_processing_options_country=1, data_processing_options_state=1000,
                      referrer_url="https://example.com/")
        status, body = self.send([ev], extra={"test_event_code": "TEST1", "partner_agent": "tributary"})
        self.assertEqual(status, 200, body)

    def test_website_event_needs_user_agent_and_url(self):
        ev = purchase()
        del ev["user_data"]["client_user_agent"]
        status, body = self.send([ev])
        self.assertRefused(status, body, "data[0].user_data.client_user_agent")
        ev = purchase()
        del ev["event_source_url"]
        status, body = self.send([ev])
        self.assertRefused(status, body, "data[0].event_source_url")

    def test_purchase_needs_currency_and_value(self):
        ev = purchase()
        del ev["custom_data"]["currency"]
        status, body = self.send([ev])
        self.assertRefused(status, body, "data[0].custom_data.currency")

    def test_malformed_fbc_is_refused(self):
        ev = purchase()
        ev["user_data"]["fbc"] = "fb.5.1554763741205.AbC"
        status, body = self.send([ev])
        self.assertRefused(status, body, "data[0].user_data.fbc")

    # -- controls ---------------------------------------------------------

    def test_fail_control_gives_500_then_success(self):
        status, body = self.call("POST", "/_standin/fail", {"status": 500, "count": 1})
        self.assertEqual(status, 200, body)
        status, body = self.send([purchase()])
        self.assertEqual(status, 500, body)
        self.assertEqual(body["error"]["code"], 2)
        self.assertTrue(body["error"]["is_transient"])
        self.assertEqual(self.recorded()["events"], [])
        status, body = self.send([purchase()])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["events_received"], 1)
        requests = self.call("GET", "/_standin/requests")[1]["requests"]
        self.assertEqual([r["status"] for r in requests], [500, 200])
        self.assertNotIn(TOKEN, json.dumps(requests))

    def test_delay_control_makes_the_client_time_out(self):
        self.call("POST", "/_standin/fail", {"delay_ms": 1500, "count": 1})
        with self.assertRaises((socket.timeout, urllib.error.URLError, TimeoutError)):
            req = urllib.request.Request(
                self.base + "/%s/%s/events?access_token=%s" % (VERSION, PIXEL, TOKEN),
                data=json.dumps({"data": [purchase()]}).encode(), method="POST",
                headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=0.3).read()
        time.sleep(1.5)  # let the delayed request finish before the next reset

    def test_duplicates_by_event_id_count_once(self):
        for _ in range(2):
            status, body = self.send([purchase(event_id="order-1")])
            self.assertEqual(status, 200, body)
            self.assertEqual(body["events_received"], 1)
        status, body = self.send([purchase(event_id="order-2")])
        self.assertEqual(status, 200, body)
        rec = self.recorded()
        self.assertEqual([e["event"]["event_id"] for e in rec["events"]], ["order-1", "order-2"])
        self.assertEqual(rec["duplicates"], 1)
        self.assertEqual(rec["events"][0]["duplicates_suppressed"], 1)
        requests = self.call("GET", "/_standin/requests")[1]["requests"]
        self.assertEqual(sum(r["events_received"] for r in requests), 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
