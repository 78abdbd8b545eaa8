#!/usr/bin/env python3
"""Tests for scripts/standins/google_ads.py (stdlib unittest + urllib).

Starts the stand-in with --port 0 and checks the OAuth token flow, click conversion and
adjustment uploads, the documented refusals and the control endpoints.

  python3 scripts/standins/test_google_ads.py
"""

import datetime as dt
import hashlib
import json
import os
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import standin_server

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "google_ads.py")

DEV_TOKEN = "dev-token-123"
CLIENT_ID = "1234.apps.googleusercontent.com"
CLIENT_SECRET = "s3cret"
REFRESH_TOKEN = "1//refresh-abc"
CUSTOMER = "1234567890"
MANAGER = "9876543210"
ACTION = "customers/%s/conversionActions/111" % CUSTOMER
VERSION = "v19"


def ads_time(delta=dt.timedelta(0), offset_hours=-5):
    """A date-time in the documented format 'yyyy-mm-dd hh:mm:ss+|-hh:mm'."""
    tz = dt.timezone(dt.timedelta(hours=offset_hours))
    value = (dt.datetime.now(dt.timezone.utc) + delta).astimezone(tz)
    sign = "+" if offset_hours >= 0 else "-"
    return value.strftime("%Y-%m-%d %H:%M:%S") + "%s%02d:00" % (sign, abs(offset_hours))


def sha256(text):
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


class StandinTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.base = standin_server.start(
            STANDIN, "--developer-token", DEV_TOKEN, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--refresh-token", REFRESH_TOKEN, "--conversion-action", "111", "--conversion-action", "222")

    @classmethod
    def tearDownClass(cls):
        standin_server.stop(cls.proc)

    def setUp(self):
        self.control("POST", "reset", {"tokens": True})
        self.token = self.fetch_token()

    # ------------------------------------------------------------------ helpers
    def http(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read().decode()

    def control(self, method, name, body=None):
        data = json.dumps(body).encode() if body is not None else None
        status, _, text = self.http(method, "/_standin/" + name, data,
                                    {"Content-Type": "application/json"})
        self.assertEqual(status, 200, text)
        return json.loads(text)

    def token_request(self, **overrides):
        form = {"grant_type": "refresh_token", "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN}
        form.update(overrides)
        form = {k: v for k, v in form.items() if v is not None}
        status, headers, text = self.http(
            "POST", "/token", urllib.parse.urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        return status, headers, json.loads(text)

    def fetch_token(self):
        status, _, body = self.token_request()
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def upload(self, method, body, token=None, dev=DEV_TOKEN, login=MANAGER,
               version=VERSION, customer=CUSTOMER, raw=None):
        headers = {"Content-Type": "application/json"}
        if token is not False:
            headers["Authorization"] = "Bearer " + (token or self.token)
        if dev is not None:
            headers["developer-token"] = dev
        if login is not None:
            headers["login-customer-id"] = login
        data = raw if raw is not None else json.dumps(body).encode()
        status, resp_headers, text = self.http(
            "POST", "/%s/customers/%s:%s" % (version, customer, method), data, headers)
        return status, json.loads(text), text, resp_headers

    def click(self, **fields):
        conv = {"gclid": "Cj0KCQiA_test-gclid_1", "conversionAction": ACTION,
                "conversionDateTime": ads_time(-dt.timedelta(hours=2)),
                "conversionValue": 12.5, "currencyCode": "USD", "orderId": "ORD-1"}
        conv.update(fields)
        return {k: v for k, v in conv.items() if v is not None}

    def upload_clicks(self, conversions, **kw):
        body = {"conversions": conversions, "partialFailure": True}
        body.update(kw)
        return self.upload("uploadClickConversions", body)

    def upload_adjustments(self, adjustments, **kw):
        body = {"conversionAdjustments": adjustments, "partialFailure": True}
        body.update(kw)
        return self.upload("uploadConversionAdjustments", body)

    def assert_rpc_error(self, status, body, http, canonical, family, code):
        self.assertEqual(status, http, body)
        err = body["error"]
        self.assertEqual(err["code"], http)
        self.assertEqual(err["status"], canonical)
        failure = err["details"][0]
        self.assertEqual(failure["@type"],
                         "type.googleapis.com/google.ads.googleads.%s.errors.GoogleAdsFailure"
                         % VERSION)
        self.assertTrue(failure["requestId"])
        self.assertEqual(failure["errors"][0]["errorCode"], {family: code})
        return err

    def assert_partial_failure(self, body, index, family, code, path):
        """One failed row: empty result, google.rpc.Status code 3, error located at path."""
        self.assertIn("partialFailureError", body)
        pfe = body["partialFailureError"]
        self.assertEqual(pfe["code"], 3)
        failure = pfe["details"][0]
        self.assertEqual(failure["@type"],
                         "type.googleapis.com/google.ads.googleads.%s.errors.GoogleAdsFailure"
                         % VERSION)
        errors = [e for e in failure["errors"]
                  if e["location"]["fieldPathElements"][0].get("index") == index]
        self.assertEqual(len(errors), 1, failure)
        self.assertEqual(errors[0]["errorCode"], {family: code})
        elems = errors[0]["location"]["fieldPathElements"]
        text = ".".join(e["fieldName"] + ("[%d]" % e["index"] if "index" in e else "")
                        for e in elems)
        self.assertEqual(text, path)
        if index == 0:
            self.assertIn(path, pfe["message"])
        if "results" in body:
            self.assertEqual(body["results"][index], {})
        return errors[0]

    # ------------------------------------------------------------------ OAuth
    def test_token_flow(self):
        status, headers, body = self.token_request()
        self.assertEqual(status, 200)
        self.assertEqual(set(body), {"access_token", "expires_in", "scope", "token_type"})
        self.assertEqual(body["expires_in"], 3599)
        self.assertEqual(body["scope"], "https://www.googleapis.com/auth/adwords")
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(headers["Cache-Control"], "no-store")
        status, _, body = self.token_request(refresh_token="wrong")
        self.assertEqual((status, body["error"]), (400, "invalid_grant"))
        self.assertIn("error_description", body)
        status, _, body = self.token_request(client_id="other.apps.googleusercontent.com")
        self.assertEqual((status, body["error"]), (401, "invalid_client"))
        status, _, body = self.token_request(client_secret="nope")
        self.assertEqual((status, body["error"]), (401, "invalid_client"))
        status, _, body = self.token_request(grant_type="authorization_code")
        self.assertEqual((status, body["error"]), (400, "unsupported_grant_type"))
        status, _, body = self.token_request(refresh_token=None)
        self.assertEqual((status, body["error"]), (400, "invalid_request"))

    def test_issued_token_is_usable_and_expires_on_control(self):
        status, body, _, _ = self.upload_clicks([self.click()])
        self.assertEqual(status, 200, body)
        self.assertEqual(self.control("POST", "expire-tokens")["expired"], 1)
        status, body, _, headers = self.upload_clicks([self.click(orderId="ORD-2")])
        err = self.assert_rpc_error(status, body, 401, "UNAUTHENTICATED", "authenticationError",
                                    "OAUTH_TOKEN_EXPIRED")
        self.assertIn("Authorization", err["message"])
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        self.token = self.fetch_token()
        status, body, _, _ = self.upload_clicks([self.click(orderId="ORD-2")])
        self.assertEqual(status, 200, body)

    # ------------------------------------------------------------------ click conversions
    def test_valid_conversion_accepted(self):
        conv = self.click()
        raw = ('{"conversions": [{"gclid": "%s", "conversionAction": "%s", '
               '"conversionDateTime": "%s", "conversionValue": 12.50, "currencyCode": "USD", '
               '"orderId": "ORD-1", "consent": {"adUserData": "GRANTED"}}], '
               '"partialFailure": true, "jobId": 42}'
               % (conv["gclid"], ACTION, conv["conversionDateTime"])).encode()
        status, body, _, headers = self.upload("uploadClickConversions", None, raw=raw)
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(body["results"], [{"gclid": conv["gclid"], "conversionAction": ACTION,
                                            "conversionDateTime": conv["conversionDateTime"]}])
        self.assertEqual(body["jobId"], "42")
        self.assertTrue(headers["request-id"])
        status, _, text = self.http("GET", "/_standin/conversions")
        self.assertIn('"conversionValue": 12.50', text)          # number text kept verbatim
        stored = json.loads(text)["conversions"]
        self.assertEqual(len(stored), 1)
        self.assertEqual(stored[0]["customerId"], CUSTOMER)
        self.assertEqual(stored[0]["conversionValueText"], "12.50")
        self.assertEqual(stored[0]["conversion"]["orderId"], "ORD-1")
        self.assertEqual(stored[0]["loginCustomerId"], MANAGER)
        reqs = self.control("GET", "requests")["requests"]
        upload = [r for r in reqs if r["endpoint"] == "uploadClickConversions"][-1]
        self.assertTrue(upload["developerTokenPresent"])
        self.assertTrue(upload["loginCustomerIdPresent"])
        self.assertEqual(upload["status"], 200)

    def test_generated_job_id_and_enhanced_conversion_for_leads(self):
        conv = self.click(gclid=None, orderId="LEAD-7",
                          userIdentifiers=[{"hashedEmail": sha256(" Jane.Doe@Example.com "),
                                            "userIdentifierSource": "FIRST_PARTY"},
                                           {"hashedPhoneNumber": sha256("+14155550123")}])
        status, body, _, _ = self.upload_clicks([conv])
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertGreaterEqual(int(body["jobId"]), 2 ** 31)
        self.assertEqual(len(body["results"][0]["userIdentifiers"]), 2)

    def test_validate_only_records_nothing(self):
        status, body, _, _ = self.upload_clicks([self.click()], validateOnly=True)
        self.assertEqual(status, 200, body)
        self.assertNotIn("results", body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(self.control("GET", "conversions")["conversions"], [])
        status, body, _, _ = self.upload_clicks([self.click()])  # same order id is still free
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)

    def test_wrong_developer_token(self):
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click()], "partialFailure": True},
                                         dev="not-the-token")
        err = self.assert_rpc_error(status, body, 401, "UNAUTHENTICATED", "authenticationError",
                                    "DEVELOPER_TOKEN_INVALID")
        self.assertIn("developer-token", err["message"])
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click()], "partialFailure": True},
                                         dev=None)
        err = self.assert_rpc_error(status, body, 400, "INVALID_ARGUMENT", "requestError",
                                    "DEVELOPER_TOKEN_PARAMETER_MISSING")
        self.assertIn("developer-token", err["message"])
        self.assertEqual(self.control("GET", "conversions")["conversions"], [])

    def test_missing_bearer(self):
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click()], "partialFailure": True},
                                         token=False)
        err = self.assert_rpc_error(status, body, 401, "UNAUTHENTICATED", "authenticationError",
                                    "AUTHENTICATION_ERROR")
        self.assertIn("Authorization", err["message"])
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click()], "partialFailure": True},
                                         token="ya29.made-up")
        self.assert_rpc_error(status, body, 401, "UNAUTHENTICATED", "authenticationError",
                              "OAUTH_TOKEN_INVALID")

    def test_bad_login_customer_id_and_customer_id(self):
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click()], "partialFailure": True},
                                         login="987-654-3210")
        err = self.assert_rpc_error(status, body, 400, "INVALID_ARGUMENT", "headerError",
                                    "INVALID_LOGIN_CUSTOMER_ID")
        self.assertIn("login-customer-id", err["message"])
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click()], "partialFailure": True},
                                         customer="123-456-7890")
        self.assert_rpc_error(status, body, 401, "UNAUTHENTICATED", "authenticationError",
                              "CLIENT_CUSTOMER_ID_INVALID")

    def test_bad_conversion_date_time_format(self):
        good = self.click(orderId="ORD-OK")
        bad = self.click(orderId="ORD-BAD", conversionDateTime="2024-01-01T10:00:00Z")
        status, body, _, _ = self.upload_clicks([bad, good])
        self.assertEqual(status, 200, body)
        err = self.assert_partial_failure(body, 0, "dateError",
                                          "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET",
                                          "conversions[0].conversion_date_time")
        self.assertIn("conversion_date_time", err["message"])
        self.assertEqual(body["results"][1]["conversionDateTime"], good["conversionDateTime"])
        stored = self.control("GET", "conversions")["conversions"]
        self.assertEqual([s["conversion"]["orderId"] for s in stored], ["ORD-OK"])

    def test_conversion_date_window(self):
        old = self.click(orderId="OLD", conversionDateTime=ads_time(-dt.timedelta(days=91)))
        future = self.click(orderId="FUT", conversionDateTime=ads_time(dt.timedelta(hours=1)))
        status, body, _, _ = self.upload_clicks([old, future])
        self.assertEqual(status, 200, body)
        self.assert_partial_failure(body, 0, "conversionUploadError", "EXPIRED_EVENT",
                                    "conversions[0].conversion_date_time")
        self.assert_partial_failure(body, 1, "dateError", "LATER_THAN_MAXIMUM_DATE",
                                    "conversions[1].conversion_date_time")

    def test_plain_email_in_hashed_email(self):
        conv = self.click(userIdentifiers=[{"hashedEmail": "jane.doe@example.com"}])
        status, body, _, _ = self.upload_clicks([conv])
        self.assertEqual(status, 200, body)
        err = self.assert_partial_failure(body, 0, "conversionUploadError", "INVALID_USER_IDENTIFIER",
                                          "conversions[0].user_identifiers[0].hashed_email")
        self.assertIn("hashed_email", err["message"])
        self.assertEqual(self.control("GET", "conversions")["conversions"], [])

    def test_unknown_conversion_action(self):
        conv = self.click(conversionAction="customers/%s/conversionActions/999" % CUSTOMER)
        status, body, _, _ = self.upload_clicks([conv])
        self.assert_partial_failure(body, 0, "conversionUploadError", "NO_CONVERSION_ACTION_FOUND",
                                    "conversions[0].conversion_action")

    def test_gbraid_with_gclid(self):
        conv = self.click(gbraid="0AAAAA-gbraid")
        status, body, _, _ = self.upload_clicks([conv])
        self.assert_partial_failure(body, 0, "fieldError", "VALUE_MUST_BE_UNSET",
                                    "conversions[0].gbraid")

    def test_partial_failure_false(self):
        status, body, _, _ = self.upload_clicks([self.click()], partialFailure=False)
        err = self.assert_rpc_error(status, body, 400, "INVALID_ARGUMENT", "partialFailureError",
                                    "PARTIAL_FAILURE_MODE_REQUIRED")
        self.assertIn("partial_failure", err["message"])
        location = err["details"][0]["errors"][0]["location"]["fieldPathElements"]
        self.assertEqual(location, [{"fieldName": "partial_failure"}])
        status, body, _, _ = self.upload("uploadClickConversions", {"conversions": [self.click()]})
        self.assert_rpc_error(status, body, 400, "INVALID_ARGUMENT", "partialFailureError",
                              "PARTIAL_FAILURE_MODE_REQUIRED")

    def test_too_many_conversions(self):
        convs = [self.click(orderId="ORD-%d" % i) for i in range(2001)]
        status, body, _, _ = self.upload_clicks(convs)
        err = self.assert_rpc_error(status, body, 400, "INVALID_ARGUMENT", "conversionUploadError",
                                    "TOO_MANY_CONVERSIONS_IN_REQUEST")
        self.assertIn("conversions", err["message"])
        self.assertEqual(self.control("GET", "conversions")["conversions"], [])
        status, body, _, _ = self.upload_clicks(convs[:2000])
        self.assertEqual(status, 200)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(len(body["results"]), 2000)

    def test_unknown_field_is_invalid_argument(self):
        conv = self.click(conversionValueMicros=12500000)
        status, body, _, _ = self.upload_clicks([conv])
        self.assertEqual(status, 400, body)
        err = body["error"]
        self.assertEqual(err["status"], "INVALID_ARGUMENT")
        self.assertIn("conversionValueMicros", err["message"])
        self.assertEqual(err["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest")
        self.assertEqual(err["details"][0]["fieldViolations"][0]["field"], "conversions[0]")
        status, body, _, _ = self.upload_clicks([self.click()], debugEnabled=True)  # v19 has it
        self.assertEqual(status, 200, body)
        status, body, _, _ = self.upload("uploadClickConversions",
                                         {"conversions": [self.click(orderId="X")],
                                          "partialFailure": True, "debugEnabled": True},
                                         version="v21")
        self.assertEqual(status, 400, body)                  # removed from the request in v21
        status, body, _, _ = self.upload_clicks([self.click(conversionValue="12.5")])
        self.assertEqual(status, 400, body)

    def test_duplicate_order(self):
        status, body, _, _ = self.upload_clicks([self.click()])
        self.assertNotIn("partialFailureError", body)
        status, body, _, _ = self.upload_clicks([self.click(gclid="Cj0other")])
        self.assertEqual(status, 200, body)
        err = self.assert_partial_failure(body, 0, "conversionUploadError", "ORDER_ID_ALREADY_IN_USE",
                                          "conversions[0].order_id")
        self.assertIn("order_id", err["message"])
        status, body, _, _ = self.upload_clicks([self.click(orderId="D"), self.click(orderId="D")])
        self.assert_partial_failure(body, 0, "conversionUploadError", "DUPLICATE_ORDER_ID",
                                    "conversions[0].order_id")
        self.assert_partial_failure(body, 1, "conversionUploadError", "DUPLICATE_ORDER_ID",
                                    "conversions[1].order_id")
        self.assertEqual(len(self.control("GET", "conversions")["conversions"]), 1)

    # ------------------------------------------------------------------ adjustments
    def upload_base_conversion(self, order="ORD-1", hours_ago=5):
        status, body, _, _ = self.upload_clicks(
            [self.click(orderId=order, conversionDateTime=ads_time(-dt.timedelta(hours=hours_ago)))])
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)

    def test_retraction_accepted(self):
        self.upload_base_conversion()
        adj = {"conversionAction": ACTION, "orderId": "ORD-1", "adjustmentType": "RETRACTION",
               "adjustmentDateTime": ads_time(-dt.timedelta(hours=1))}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(body["results"], [{"orderId": "ORD-1", "conversionAction": ACTION,
                                            "adjustmentDateTime": adj["adjustmentDateTime"],
                                            "adjustmentType": "RETRACTION"}])
        self.assertTrue(body["jobId"])
        stored = self.control("GET", "adjustments")["adjustments"]
        self.assertEqual(stored[0]["adjustment"]["adjustmentType"], "RETRACTION")
        adj2 = dict(adj, adjustmentDateTime=ads_time(-dt.timedelta(minutes=30)))
        status, body, _, _ = self.upload_adjustments([adj2])
        self.assert_partial_failure(body, 0, "conversionAdjustmentUploadError",
                                    "CONVERSION_ALREADY_RETRACTED", "conversion_adjustments[0].order_id")

    def test_restatement_accepted(self):
        self.upload_base_conversion()
        when = ads_time(-dt.timedelta(hours=1))
        raw = ('{"conversionAdjustments": [{"conversionAction": "%s", "orderId": "ORD-1", '
               '"adjustmentType": "RESTATEMENT", "adjustmentDateTime": "%s", '
               '"restatementValue": {"adjustedValue": 9.990, "currencyCode": "USD"}}], '
               '"partialFailure": true}' % (ACTION, when)).encode()
        status, body, _, _ = self.upload("uploadConversionAdjustments", None, raw=raw)
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(body["results"][0]["adjustmentType"], "RESTATEMENT")
        status, _, text = self.http("GET", "/_standin/adjustments")
        self.assertIn('"adjustedValue": 9.990', text)
        self.assertEqual(json.loads(text)["adjustments"][0]["adjustedValueText"], "9.990")
        # an older restatement after a newer one is refused
        older = {"conversionAction": ACTION, "orderId": "ORD-1", "adjustmentType": "RESTATEMENT",
                 "adjustmentDateTime": ads_time(-dt.timedelta(hours=2)),
                 "restatementValue": {"adjustedValue": 5}}
        status, body, _, _ = self.upload_adjustments([older])
        self.assert_partial_failure(body, 0, "conversionAdjustmentUploadError",
                                    "MORE_RECENT_RESTATEMENT_FOUND",
                                    "conversion_adjustments[0].adjustment_date_time")

    def test_restatement_without_restatement_value(self):
        self.upload_base_conversion()
        adj = {"conversionAction": ACTION, "orderId": "ORD-1", "adjustmentType": "RESTATEMENT",
               "adjustmentDateTime": ads_time(-dt.timedelta(hours=1))}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assertEqual(status, 200, body)
        err = self.assert_partial_failure(body, 0, "fieldError", "REQUIRED",
                                          "conversion_adjustments[0].restatement_value")
        self.assertIn("restatement_value", err["message"])
        retraction = dict(adj, adjustmentType="RETRACTION", restatementValue={"adjustedValue": 1})
        status, body, _, _ = self.upload_adjustments([retraction])
        self.assert_partial_failure(body, 0, "fieldError", "VALUE_MUST_BE_UNSET",
                                    "conversion_adjustments[0].restatement_value")
        self.assertEqual(self.control("GET", "adjustments")["adjustments"], [])

    def test_adjustment_of_unknown_order(self):
        self.upload_base_conversion()
        adj = {"conversionAction": ACTION, "orderId": "NEVER-UPLOADED",
               "adjustmentType": "RETRACTION", "adjustmentDateTime": ads_time(-dt.timedelta(hours=1))}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assertEqual(status, 200, body)
        err = self.assert_partial_failure(body, 0, "conversionAdjustmentUploadError",
                                          "CONVERSION_NOT_FOUND",
                                          "conversion_adjustments[0].order_id")
        self.assertIn("conversion", err["message"])

    def test_adjustment_before_conversion(self):
        self.upload_base_conversion(hours_ago=2)
        adj = {"conversionAction": ACTION, "orderId": "ORD-1", "adjustmentType": "RETRACTION",
               "adjustmentDateTime": ads_time(-dt.timedelta(hours=3))}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assert_partial_failure(body, 0, "conversionAdjustmentUploadError",
                                    "ADJUSTMENT_PRECEDES_CONVERSION",
                                    "conversion_adjustments[0].adjustment_date_time")

    def test_restatement_by_gclid_date_time_pair(self):
        when = ads_time(-dt.timedelta(hours=4))
        status, body, _, _ = self.upload_clicks([self.click(orderId=None, conversionDateTime=when)])
        self.assertNotIn("partialFailureError", body)
        adj = {"conversionAction": ACTION, "adjustmentType": "RESTATEMENT",
               "gclidDateTimePair": {"gclid": "Cj0KCQiA_test-gclid_1", "conversionDateTime": when},
               "adjustmentDateTime": ads_time(-dt.timedelta(hours=1)),
               "restatementValue": {"adjustedValue": 7}}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(body["results"][0]["gclidDateTimePair"], adj["gclidDateTimePair"])
        both = dict(adj, orderId="ORD-1")
        status, body, _, _ = self.upload_adjustments([both])
        self.assert_partial_failure(body, 0, "conversionAdjustmentUploadError",
                                    "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET",
                                    "conversion_adjustments[0].gclid_date_time_pair")

    def test_enhancement(self):
        adj = {"conversionAction": ACTION, "orderId": "WEB-1", "adjustmentType": "ENHANCEMENT",
               "userIdentifiers": [{"hashedEmail": sha256("jane@example.com")},
                                   {"addressInfo": {"hashedFirstName": sha256("jane"),
                                                    "countryCode": "US", "postalCode": "94043"}}],
               "userAgent": "Mozilla/5.0"}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(body["results"][0], {"orderId": "WEB-1", "conversionAction": ACTION,
                                              "adjustmentType": "ENHANCEMENT"})
        status, body, _, _ = self.upload_adjustments([adj])
        self.assert_partial_failure(body, 0, "conversionAdjustmentUploadError",
                                    "CONVERSION_ALREADY_ENHANCED", "conversion_adjustments[0].order_id")
        status, body, _, _ = self.upload_adjustments([dict(adj, orderId=None)])
        self.assert_partial_failure(body, 0, "fieldError", "REQUIRED",
                                    "conversion_adjustments[0].order_id")

    def test_adjustment_bad_type_is_invalid_argument(self):
        adj = {"conversionAction": ACTION, "orderId": "ORD-1", "adjustmentType": "CANCEL",
               "adjustmentDateTime": ads_time(-dt.timedelta(hours=1))}
        status, body, _, _ = self.upload_adjustments([adj])
        self.assertEqual(status, 400, body)
        self.assertIn("adjustment_type", body["error"]["message"])

    # ------------------------------------------------------------------ control endpoints
    def test_fail_control_then_success(self):
        self.control("POST", "fail", {"status": 500, "count": 1})
        status, body, _, _ = self.upload_clicks([self.click()])
        err = self.assert_rpc_error(status, body, 500, "INTERNAL", "internalError", "INTERNAL_ERROR")
        self.assertTrue(err["message"])
        self.assertEqual(self.control("GET", "conversions")["conversions"], [])
        status, body, _, _ = self.upload_clicks([self.click()])
        self.assertEqual(status, 200, body)
        self.assertNotIn("partialFailureError", body)
        self.assertEqual(len(self.control("GET", "conversions")["conversions"]), 1)
        reqs = [r for r in self.control("GET", "requests")["requests"]
                if r["endpoint"] == "uploadClickConversions"]
        self.assertEqual([r["status"] for r in reqs], [500, 200])
        self.assertTrue(reqs[0]["injected"])

    def test_fail_control_503_count(self):
        self.control("POST", "fail", {"status": 503, "count": 2})
        for _ in range(2):
            status, body, _, _ = self.upload_clicks([self.click()])
            self.assert_rpc_error(status, body, 503, "UNAVAILABLE", "internalError", "TRANSIENT_ERROR")
        status, body, _, _ = self.upload_clicks([self.click()])
        self.assertEqual(status, 200, body)

    def test_delay_control(self):
        self.control("POST", "fail", {"delay_ms": 400, "count": 1})
        started = time.monotonic()
        status, body, _, _ = self.upload_clicks([self.click()])
        self.assertEqual(status, 200, body)
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        started = time.monotonic()
        self.upload_clicks([self.click(orderId="ORD-9")])
        self.assertLess(time.monotonic() - started, 0.4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
