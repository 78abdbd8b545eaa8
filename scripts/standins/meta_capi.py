#!/usr/bin/env python3
"""Strict local stand-in for Meta's Conversions API (POST /{version}/{pixel_id}/events).

Tests use it because graph.facebook.com cannot be reached from this machine.
Python 3 standard library only.

Usage:
    meta_capi.py --port 0 --access-token TOKEN [--access-token OTHER ...]
                 [--future-tolerance-seconds 60] [--max-age-seconds 604800]

Prints exactly one line "listening <port>" on stdout, then serves on 127.0.0.1
until SIGTERM (or SIGINT).  One log line per request goes to stderr.

Where each rule comes from (Meta documentation, read through the search tool;
nothing below is copied from it):

  [SE]  "Server Event Parameters"
        https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event
        (also .../documentation/ads-commerce/conversions-api/parameters/server-event)
        - event_name string required; event_time integer unix seconds required;
          user_data object required; custom_data object optional;
          event_source_url string (must begin with http:// or https://);
          opt_out boolean; event_id string; action_source required;
        - "If any event_time in data is greater than 7 days in the past, we
          return an error for the entire request and process no events";
        - deduplication: same event_name + event_id received within 48 hours,
          only the first one is considered.
  [PAR] "Parameters" (overview)
        https://developers.facebook.com/docs/marketing-api/conversions-api/parameters
        - website events require client_user_agent, action_source and
          event_source_url; non-web events require only action_source;
        - index of documented event keys: event_name, event_time, user_data,
          custom_data, event_source_url, opt_out, event_id, action_source,
          data_processing_options, data_processing_options_country,
          data_processing_options_state, referrer_url, plus App Data and
          Original Event Data parameter sections;
        - user_data key list with "Hashing required" (em ph fn ln ge db ct st zp
          country), "Hashing recommended" (external_id) and "Do not hash"
          (client_ip_address client_user_agent fbc fbp subscription_id
          fb_login_id lead_id anon_id madid page_id page_scoped_user_id
          ctwa_clid ig_account_id ig_sid); anon_id and madid are for app events only.
  [MB]  "Main Body Parameters"
        https://developers.facebook.com/documentation/ads-commerce/conversions-api/parameters/main-body
        - data: array of server events (required); test_event_code: string.
  [CI]  "Customer Information Parameters"
        https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
        - at least one user_data parameter must be provided; unhashed contact
          information is not accepted; em/ph/fn/ln/db/... are "string or
          list<string>", SHA-256 (lowercase hex in every documented example).
  [FBC] "ClickID and the fbp and fbc Parameters"
        https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc
        - fbc = fb.<subdomainIndex>.<creationTime>.<fbclid>, fbp =
          fb.<subdomainIndex>.<creationTime>.<random number>; subdomainIndex
          is 0 ("com"), 1 ("example.com") or 2 ("www.example.com");
          creationTime in milliseconds; the ClickID is case sensitive.
  [CD]  "Custom Data Parameters"
        https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/custom-data
        and "Conversions API for Offline Events"
        https://developers.facebook.com/documentation/ads-commerce/conversions-api/offline-events
        - value (float) and currency (ISO 4217 three-letter code, e.g. "usd"
          or "USD") are required for Purchase events; contents is a list of
          objects whose required fields are id and quantity (item_price,
          delivery_category optional); content_type is product or product_group;
          delivery_category is in_store, curbside or home_delivery.
  [APP] "App Data Parameters"
        https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/app-data
        - advertiser_tracking_enabled, application_tracking_enabled, extinfo
          are required for app events; campaign_ids, install_referrer,
          installer_package, url_schemes, vendor_id, windows_attribution_id optional.
  [API] "Using the API"
        https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api
        - POST https://graph.facebook.com/{API_VERSION}/{PIXEL_ID}/events with
          access_token as a query parameter or form field and data as a
          JSON-encoded form field; the documented Purchase example payload
          (used by test_meta_capi.py); up to 1,000 events per request and an
          invalid event rejects the whole batch; success answer
          {"events_received": n, "messages": [], "fbtrace_id": ...}.
  [TS]  "Troubleshooting" (Conversions API support)
        https://developers.facebook.com/documentation/ads-commerce/conversions-api/support
        - valid payload -> 2xx; invalid payload -> 4xx with minimal details;
          retry on non-client errors such as timeouts.
  [ERR] Graph API "Handling Errors"
        https://developers.facebook.com/docs/graph-api/guides/error-handling
        - error shape {"error": {message, type, code, error_subcode,
          error_user_title, error_user_msg, fbtrace_id}}; code 190 = access
          token expired/invalid; code 2 = API service, temporary, retry;
          code 4 = too many calls; code 100 = invalid parameter;
          code 200-299 = permission errors.
  [DD]  "Handling Duplicate Pixel and Conversions API Events"
        https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events
        - events are identical when event_id and event_name match; first kept.
  [SDK] facebook/facebook-python-business-sdk, facebook_business/adobjects/
        serverside/*.py (Meta's own client; used only to complete key lists
        the excerpts above truncate: advanced_measurement_table, messaging_channel,
        original_event_data, attribution_data on events; namespace_id,
        upload_id, upload_tag, upload_source, partner_agent on the body).

Not documented by Meta in what could be read (observed behaviour, marked
"observed" where used): the message text of the invalid-token error
("Invalid OAuth access token.", code 190, HTTP 400), the missing-token error
(code 104, "An access token is required to request this resource."), the
error_subcode numbers 2804003 (event timestamp too old), 2804050 (too few
customer information parameters) and 2804019 ("Server Side Api Parameter
Error", used here for every other parameter error), and the "Unexpected key"
wording for unknown keys.

Stand-in choices that are stricter than, or not settled by, the docs:
  - external_id must be SHA-256 too (the docs only *recommend* hashing it);
  - value must be plain decimal notation (no exponent); its text is kept;
  - event_time may be at most --future-tolerance-seconds in the future;
  - fbc/fbp creationTime must be 13 digits (milliseconds);
  - unknown keys are refused in the body, in each event, in user_data,
    app_data and original_event_data (custom_data may carry custom properties).

Control endpoints (not part of Meta; for tests), all JSON:
  GET  /_standin/events    {"events": [{"pixel_id", "test_event_code",
                            "event" (exactly as received), "value_text",
                            "received_at", "duplicates_suppressed"}],
                            "duplicates": n}
  GET  /_standin/requests  {"requests": [{"method", "path", "status",
                            "error", "pixel_id", "events_received",
                            "test_event_code", "events", "received_at"}]}
  POST /_standin/fail      {"status": 500, "count": 3} or
                           {"delay_ms": 3000, "count": 1} (both may be combined;
                           optional "error": {...} overrides error fields)
  POST /_standin/reset     forget everything
"""

import argparse
import email.parser
import email.policy
import ipaddress
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import standin_server

# ---------------------------------------------------------------------------
# Exact-number JSON handling
# ---------------------------------------------------------------------------


class RawNumber(str):
    """A JSON number kept as the exact text that was received."""


class JSONInputError(ValueError):
    pass


def _reject_constant(name):
    raise JSONInputError("non-standard JSON constant %s" % name)


def _no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise JSONInputError("duplicate key %r in JSON object" % key)
        obj[key] = value
    return obj


def parse_json(text):
    """json.loads that keeps every number as its original text (RawNumber)."""
    return json.loads(
        text,
        parse_float=RawNumber,
        parse_int=RawNumber,
        parse_constant=_reject_constant,
        object_pairs_hook=_no_duplicate_keys,
    )


def dump_json(value):
    """Serialise, writing RawNumber values back exactly as received."""
    if isinstance(value, RawNumber):
        return str.__str__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(
            json.dumps(str(k), ensure_ascii=False) + ":" + dump_json(v) for k, v in value.items()
        ) + "}"
    raise TypeError("cannot serialise %r" % type(value))


def is_str(v):
    return isinstance(v, str) and not isinstance(v, RawNumber)


def is_num(v):
    return isinstance(v, RawNumber)


INT_RE = re.compile(r"-?(0|[1-9][0-9]*)")
DECIMAL_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


def is_int(v):
    return is_num(v) and INT_RE.fullmatch(v) is not None


def is_bool(v):
    return v is True or v is False


def type_name(v):
    if v is None:
        return "null"
    if is_bool(v):
        return "boolean"
    if is_num(v):
        return "number"
    if is_str(v):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


# ---------------------------------------------------------------------------
# Documented vocabularies
# ---------------------------------------------------------------------------

# [MB] + [SDK] + Graph access parameters.
BODY_KEYS = {
    "data", "test_event_code", "partner_agent", "namespace_id", "upload_id",
    "upload_tag", "upload_source", "access_token", "appsecret_proof",
}

# [SE] + [PAR] + [SDK]
EVENT_KEYS = {
    "event_name", "event_time", "user_data", "custom_data", "event_source_url",
    "opt_out", "event_id", "action_source", "data_processing_options",
    "data_processing_options_country", "data_processing_options_state",
    "referrer_url", "app_data", "original_event_data", "attribution_data",
    "messaging_channel", "advanced_measurement_table",
}

# [SE] action_source values
ACTION_SOURCES = {
    "email", "website", "app", "phone_call", "chat", "physical_store",
    "system_generated", "business_messaging", "other",
}

# [PAR]/[CI] "Hashing required" (+ external_id per this project's contract,
# + the legacy hashed keys Meta's SDK still sends).
HASHED_USER_KEYS = {
    "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country",
    "external_id", "f5first", "f5last", "fi", "dobd", "dobm", "doby",
}
# [PAR]/[CI] "Do not hash"
PLAIN_USER_KEYS = {
    "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id",
    "fb_login_id", "lead_id", "anon_id", "madid", "page_id",
    "page_scoped_user_id", "ctwa_clid", "ig_account_id", "ig_sid",
}
APP_ONLY_USER_KEYS = {"anon_id", "madid"}
USER_KEYS = HASHED_USER_KEYS | PLAIN_USER_KEYS

# [APP] + [SDK]
APP_DATA_KEYS = {
    "advertiser_tracking_enabled", "application_tracking_enabled", "extinfo",
    "campaign_ids", "install_referrer", "installer_package", "url_schemes",
    "vendor_id", "windows_attribution_id", "consider_views",
    "include_dwell_data", "include_video_data", "receipt_data",
}
ORIGINAL_EVENT_KEYS = {"event_name", "event_time", "order_id", "event_id"}
MESSAGING_CHANNELS = {"whatsapp", "messenger", "instagram"}
DELIVERY_CATEGORIES = {"in_store", "curbside", "home_delivery"}
CONTENT_KEYS = {"id", "quantity", "item_price", "delivery_category", "title",
                "description", "brand", "category"}

# ISO 4217 currency codes (active, excluding metals, bond units and test codes).
ISO_4217 = set("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV
BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE
CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD
KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN
MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS
TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST
XAF XCD XCG XDR XOF XPF YER ZAR ZMW ZWG ZWL
""".split())

SHA256_RE = re.compile(r"[0-9a-f]{64}")
FBC_RE = re.compile(r"fb\.[012]\.[0-9]{13}\.[^\s.][^\s]*")
FBP_RE = re.compile(r"fb\.[012]\.[0-9]{13}\.[0-9]+")
URL_RE = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
VERSION_PATH_RE = re.compile(r"/(v[0-9]+\.[0-9]+)/([0-9]+)/events/?")

MAX_EVENTS = 1000                    # [API]
DEDUP_WINDOW_SECONDS = 48 * 3600     # [SE]/[DD]

# error_subcodes (observed, see module docstring)
SUB_TOO_OLD = 2804003
SUB_THIN_USER_DATA = 2804050
SUB_PARAM = 2804019


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def new_trace_id():
    return "A" + secrets.token_urlsafe(16)


class GraphError(Exception):
    def __init__(self, status, code, message, subcode=None, title=None,
                 user_msg=None, transient=False, field=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.subcode = subcode
        self.title = title
        self.user_msg = user_msg
        self.transient = transient
        self.field = field

    def body(self, trace):
        err = {"message": self.message, "type": "OAuthException", "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["is_transient"] = self.transient
        if self.title is not None:
            err["error_user_title"] = self.title
        if self.user_msg is not None:
            err["error_user_msg"] = self.user_msg
        if self.field is not None:
            err["error_data"] = {"blame_field_specs": [[self.field]]}
        err["fbtrace_id"] = trace
        return {"error": err}


def meta_path(field):
    """data[3].user_data.em[0] -> $['data'][3]['user_data']['em'][0]"""
    out = "$"
    for part in re.findall(r"[^.\[\]]+|\[[0-9]+\]", field):
        out += part if part.startswith("[") else "['%s']" % part
    return out


def param_error(field, problem, subcode=SUB_PARAM, title="Server Side Api Parameter Error"):
    detail = "%s: %s" % (field, problem)
    return GraphError(
        400, 100, "Invalid parameter: " + detail, subcode=subcode, title=title,
        user_msg="The parameter %s is invalid: %s" % (meta_path(field), problem),
        field=field,
    )


def invalid_token_error():
    # [ERR] code 190; message text observed.
    return GraphError(400, 190, "Invalid OAuth access token.")


def missing_token_error():
    # Graph code 104 (observed); not a Conversions-API-specific rule.
    return GraphError(400, 104, "An access token is required to request this resource.")


def unsupported_request_error(method, path):
    return GraphError(
        400, 100,
        "Unsupported %s request. Object with path '%s' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation." % (method.lower(), path),
        subcode=33,
    )


def injected_error(status, overrides):
    """Error body for /_standin/fail, per [ERR]."""
    if status >= 500:
        err = GraphError(status, 2, "An unexpected error has occurred. Please retry your request later.",
                         transient=True)
    elif status == 429:
        err = GraphError(status, 4, "(#4) Application request limit reached", transient=True)
    elif status == 401:
        err = GraphError(status, 190, "Invalid OAuth access token.")
    elif status == 403:
        err = GraphError(status, 200, "(#200) Permissions error")
    else:
        err = GraphError(status, 100, "Invalid parameter", subcode=SUB_PARAM,
                         title="Server Side Api Parameter Error",
                         user_msg="Injected failure from /_standin/fail")
    for key, attr in (("message", "message"), ("code", "code"), ("error_subcode", "subcode"),
                      ("error_user_title", "title"), ("error_user_msg", "user_msg"),
                      ("is_transient", "transient")):
        if key in overrides:
            setattr(err, attr, overrides[key])
    return err


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_str(value, field, allow_empty=False):
    if not is_str(value):
        raise param_error(field, "must be a string, got %s" % type_name(value))
    if not allow_empty and value.strip() == "":
        raise param_error(field, "must not be empty")


def _check_url(value, field):
    _check_str(value, field)
    if URL_RE.fullmatch(value) is None:
        raise param_error(field, "must be an absolute URL beginning with http:// or https://")


def _check_hashed(value, field):
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise param_error(field, "must not be an empty array")
    for i, item in enumerate(values):
        f = "%s[%d]" % (field, i) if isinstance(value, list) else field
        if not is_str(item):
            raise param_error(f, "must be a string (or an array of strings), got %s" % type_name(item))
        if SHA256_RE.fullmatch(item) is None:
            raise param_error(
                f, "must be a SHA-256 hash of the normalised value (64 lowercase hex characters); "
                   "unhashed values are not accepted")


def _check_id(value, field):
    if is_str(value):
        if value.strip() == "":
            raise param_error(field, "must not be empty")
    elif not is_int(value):
        raise param_error(field, "must be a string or an integer, got %s" % type_name(value))


def validate_user_data(ud, field, action_source):
    if not isinstance(ud, dict):
        raise param_error(field, "must be an object, got %s" % type_name(ud))
    for key in ud:
        if key not in USER_KEYS:
            raise param_error("%s.%s" % (field, key),
                              'Unexpected key "%s" on param "%s"' % (key, meta_path(field)))
    present = 0
    for key, value in ud.items():
        f = "%s.%s" % (field, key)
        if key in HASHED_USER_KEYS:
            _check_hashed(value, f)
        elif key == "client_ip_address":
            _check_str(value, f)
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise param_error(f, "must be a valid IPv4 or IPv6 address (not hashed)")
        elif key == "client_user_agent":
            _check_str(value, f)
        elif key == "fbc":
            _check_str(value, f)
            if FBC_RE.fullmatch(value) is None:
                raise param_error(f, "must have the form fb.<subdomainIndex 0|1|2>.<creationTime in "
                                     "milliseconds>.<fbclid> (not hashed)")
        elif key == "fbp":
            _check_str(value, f)
            if FBP_RE.fullmatch(value) is None:
                raise param_error(f, "must have the form fb.<subdomainIndex 0|1|2>.<creationTime in "
                                     "milliseconds>.<random number> (not hashed)")
        else:
            _check_id(value, f)
            if key in APP_ONLY_USER_KEYS and action_source != "app":
                raise param_error(f, "is for app events only (action_source must be \"app\")")
        present += 1
    if present == 0:
        raise param_error(field, "must contain at least one customer information parameter",
                          subcode=SUB_THIN_USER_DATA)


def validate_custom_data(cd, field, event_name):
    if not isinstance(cd, dict):
        raise param_error(field, "must be an object, got %s" % type_name(cd))
    if "value" in cd:
        v = cd["value"]
        f = field + ".value"
        if not (is_num(v) or is_str(v)):
            raise param_error(f, "must be a number or a numeric string, got %s" % type_name(v))
        if DECIMAL_RE.fullmatch(v) is None:
            raise param_error(f, "must be a decimal number such as 142.54 (got %s)" % dump_json(v))
    if "currency" in cd:
        c = cd["currency"]
        f = field + ".currency"
        _check_str(c, f)
        if not re.fullmatch(r"[A-Za-z]{3}", c) or c.upper() not in ISO_4217:
            raise param_error(f, "must be an ISO 4217 three-letter currency code such as usd or USD "
                                 "(got %s)" % dump_json(c))
    if event_name == "Purchase":
        for key in ("currency", "value"):
            if key not in cd:
                raise param_error("%s.%s" % (field, key), "is required for Purchase events")
    if "contents" in cd:
        contents = cd["contents"]
        f = field + ".contents"
        if not isinstance(contents, list):
            raise param_error(f, "must be an array of objects, got %s" % type_name(contents))
        for i, item in enumerate(contents):
            fi = "%s[%d]" % (f, i)
            if not isinstance(item, dict):
                raise param_error(fi, "must be an object, got %s" % type_name(item))
            for key in item:
                if key not in CONTENT_KEYS:
                    raise param_error("%s.%s" % (fi, key),
                                      'Unexpected key "%s" on param "%s"' % (key, meta_path(fi)))
            if "id" not in item:
                raise param_error(fi + ".id", "is required in every contents object")
            _check_str(item["id"], fi + ".id")
            if "quantity" not in item:
                raise param_error(fi + ".quantity", "is required in every contents object")
            q = item["quantity"]
            if not is_int(q) or int(q) < 1:
                raise param_error(fi + ".quantity", "must be a positive integer, got %s" % dump_json(q))
            if "item_price" in item:
                p = item["item_price"]
                if not is_num(p) or DECIMAL_RE.fullmatch(p) is None:
                    raise param_error(fi + ".item_price", "must be a decimal number, got %s" % dump_json(p))
            if "delivery_category" in item and item["delivery_category"] not in DELIVERY_CATEGORIES:
                raise param_error(fi + ".delivery_category",
                                  "must be one of %s" % ", ".join(sorted(DELIVERY_CATEGORIES)))
            for key in ("title", "description", "brand", "category"):
                if key in item:
                    _check_str(item[key], "%s.%s" % (fi, key), allow_empty=True)
    if "content_ids" in cd:
        ids = cd["content_ids"]
        f = field + ".content_ids"
        if not isinstance(ids, list):
            raise param_error(f, "must be an array of strings, got %s" % type_name(ids))
        for i, item in enumerate(ids):
            _check_str(item, "%s[%d]" % (f, i))
    if "content_type" in cd and cd["content_type"] not in ("product", "product_group"):
        raise param_error(field + ".content_type", "must be \"product\" or \"product_group\"")
    if "num_items" in cd and not is_int(cd["num_items"]):
        raise param_error(field + ".num_items", "must be an integer, got %s" % dump_json(cd["num_items"]))
    for key in ("predicted_ltv", "net_revenue"):
        if key in cd and not (is_num(cd[key]) and DECIMAL_RE.fullmatch(cd[key])):
            raise param_error("%s.%s" % (field, key), "must be a decimal number, got %s" % dump_json(cd[key]))
    for key in ("order_id", "content_name", "content_category", "search_string", "status", "item_number"):
        if key in cd:
            _check_str(cd[key], "%s.%s" % (field, key), allow_empty=True)
    if "delivery_category" in cd and cd["delivery_category"] not in DELIVERY_CATEGORIES:
        raise param_error(field + ".delivery_category",
                          "must be one of %s" % ", ".join(sorted(DELIVERY_CATEGORIES)))


def _check_flag(value, field):
    if not (is_bool(value) or (is_int(value) and value in ("0", "1"))):
        raise param_error(field, "must be a boolean (or 0/1), got %s" % dump_json(value))


def validate_app_data(ad, field, action_source):
    if not isinstance(ad, dict):
        raise param_error(field, "must be an object, got %s" % type_name(ad))
    for key in ad:
        if key not in APP_DATA_KEYS:
            raise param_error("%s.%s" % (field, key),
                              'Unexpected key "%s" on param "%s"' % (key, meta_path(field)))
    for key in ("advertiser_tracking_enabled", "application_tracking_enabled", "consider_views",
                "include_dwell_data", "include_video_data"):
        if key in ad:
            _check_flag(ad[key], "%s.%s" % (field, key))
    if action_source == "app":
        for key in ("advertiser_tracking_enabled", "application_tracking_enabled", "extinfo"):
            if key not in ad:
                raise param_error("%s.%s" % (field, key), "is required for app events")
    if "extinfo" in ad and not isinstance(ad["extinfo"], (list, dict)):
        raise param_error(field + ".extinfo", "must be an array or object, got %s" % type_name(ad["extinfo"]))


def validate_event(ev, i, now, cfg):
    base = "data[%d]" % i
    if not isinstance(ev, dict):
        raise param_error(base, "must be an object, got %s" % type_name(ev))
    for key in ev:
        if key not in EVENT_KEYS:
            raise param_error("%s.%s" % (base, key),
                              'Unexpected key "%s" on param "%s"' % (key, meta_path(base)))

    if "event_name" not in ev:
        raise param_error(base + ".event_name", "is required")
    _check_str(ev["event_name"], base + ".event_name")

    if "event_time" not in ev:
        raise param_error(base + ".event_time", "is required")
    et = ev["event_time"]
    if not is_int(et):
        raise param_error(base + ".event_time",
                          "must be an integer Unix timestamp in seconds, got %s" % dump_json(et))
    et = int(et)
    if now - et > cfg.max_age_seconds:
        raise param_error(
            base + ".event_time",
            "is %d seconds in the past; events must be sent within 7 days (%d seconds) of when they "
            "occurred" % (now - et, cfg.max_age_seconds),
            subcode=SUB_TOO_OLD, title="Event Timestamp Too Old")
    if et - now > cfg.future_tolerance_seconds:
        raise param_error(
            base + ".event_time",
            "is %d seconds in the future (tolerance %d seconds); it looks like milliseconds or a "
            "wrong clock" % (et - now, cfg.future_tolerance_seconds))

    if "action_source" not in ev:
        raise param_error(base + ".action_source", "is required for every event (one of %s)"
                          % ", ".join(sorted(ACTION_SOURCES)))
    source = ev["action_source"]
    if not is_str(source) or source not in ACTION_SOURCES:
        raise param_error(base + ".action_source", "must be one of %s, got %s"
                          % (", ".join(sorted(ACTION_SOURCES)), dump_json(source)))

    if "user_data" not in ev:
        raise param_error(base + ".user_data", "is required", subcode=SUB_PARAM)
    validate_user_data(ev["user_data"], base + ".user_data", source)

    if source == "website":
        if "event_source_url" not in ev:
            raise param_error(base + ".event_source_url", "is required for website events")
        if "client_user_agent" not in ev["user_data"]:
            raise param_error(base + ".user_data.client_user_agent", "is required for website events")

    if "event_source_url" in ev:
        _check_url(ev["event_source_url"], base + ".event_source_url")
    if "referrer_url" in ev:
        _check_url(ev["referrer_url"], base + ".referrer_url")
    if "event_id" in ev:
        _check_str(ev["event_id"], base + ".event_id")
    if "opt_out" in ev and not is_bool(ev["opt_out"]):
        raise param_error(base + ".opt_out", "must be a boolean, got %s" % dump_json(ev["opt_out"]))

    if "custom_data" in ev:
        validate_custom_data(ev["custom_data"], base + ".custom_data", ev["event_name"])
    elif ev["event_name"] == "Purchase":
        raise param_error(base + ".custom_data",
                          "is required for Purchase events (with currency and value)")

    if "data_processing_options" in ev:
        dpo = ev["data_processing_options"]
        f = base + ".data_processing_options"
        if not isinstance(dpo, list):
            raise param_error(f, "must be an array (either [] or [\"LDU\"]), got %s" % type_name(dpo))
        for j, item in enumerate(dpo):
            if item != "LDU" or not is_str(item):
                raise param_error("%s[%d]" % (f, j), "the only documented option is \"LDU\"")
    if "data_processing_options_country" in ev:
        c = ev["data_processing_options_country"]
        if not is_int(c) or c not in ("0", "1"):
            raise param_error(base + ".data_processing_options_country",
                              "must be 1 (United States) or 0 (geolocate), got %s" % dump_json(c))
    if "data_processing_options_state" in ev:
        s = ev["data_processing_options_state"]
        if not is_int(s) or not (int(s) == 0 or 1000 <= int(s) <= 1999):
            raise param_error(base + ".data_processing_options_state",
                              "must be 0 (geolocate) or a state code such as 1000 (California), got %s"
                              % dump_json(s))

    if "app_data" in ev:
        validate_app_data(ev["app_data"], base + ".app_data", source)
    elif source == "app":
        raise param_error(base + ".app_data", "is required for app events")

    if "original_event_data" in ev:
        oed = ev["original_event_data"]
        f = base + ".original_event_data"
        if not isinstance(oed, dict):
            raise param_error(f, "must be an object, got %s" % type_name(oed))
        for key in oed:
            if key not in ORIGINAL_EVENT_KEYS:
                raise param_error("%s.%s" % (f, key),
                                  'Unexpected key "%s" on param "%s"' % (key, meta_path(f)))
        if "event_name" in oed:
            _check_str(oed["event_name"], f + ".event_name")
        if "event_time" in oed and not is_int(oed["event_time"]):
            raise param_error(f + ".event_time", "must be an integer Unix timestamp in seconds")
        for key in ("order_id", "event_id"):
            if key in oed:
                _check_str(oed[key], "%s.%s" % (f, key))
    if "attribution_data" in ev and not isinstance(ev["attribution_data"], dict):
        raise param_error(base + ".attribution_data",
                          "must be an object, got %s" % type_name(ev["attribution_data"]))
    if "messaging_channel" in ev:
        mc = ev["messaging_channel"]
        if not is_str(mc) or mc not in MESSAGING_CHANNELS:
            raise param_error(base + ".messaging_channel",
                              "must be one of %s" % ", ".join(sorted(MESSAGING_CHANNELS)))
    elif source == "business_messaging":
        raise param_error(base + ".messaging_channel", "is required for business_messaging events")
    if "advanced_measurement_table" in ev:
        _check_str(ev["advanced_measurement_table"], base + ".advanced_measurement_table")


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.events = []          # deduplicated records
        self.requests = []        # every request on non-control paths
        self.duplicates = 0
        self.dedup_index = {}     # (pixel, event_name, event_id) -> record
        self.fail_rule = None     # {"status", "delay_ms", "count", "error"}

    def take_fail_rule(self):
        with self.lock:
            rule = self.fail_rule
            if rule is None:
                return None
            rule["count"] -= 1
            if rule["count"] <= 0:
                self.fail_rule = None
            return dict(rule)


def value_text_of(event):
    cd = event.get("custom_data")
    if isinstance(cd, dict) and "value" in cd:
        v = cd["value"]
        if is_num(v) or is_str(v):
            return str.__str__(v)
    return None


# ---------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------


def parse_form_multipart(ctype, body):
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body)
    if not msg.is_multipart():
        raise GraphError(400, 100, "Invalid parameter: malformed multipart/form-data body")
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        if name in fields:
            raise param_error(name, "is given more than once")
        payload = part.get_payload(decode=True) or b""
        fields[name] = payload.decode(part.get_content_charset() or "utf-8")
    return fields


def collect_params(handler, body):
    """Merge query-string and body parameters as the Graph API does."""
    split = urllib.parse.urlsplit(handler.path)
    params = {}
    for key, values in urllib.parse.parse_qs(split.query, keep_blank_values=True).items():
        if len(values) > 1:
            raise param_error(key, "is given more than once in the query string")
        params[key] = values[0]

    ctype_full = handler.headers.get("Content-Type", "")
    ctype = ctype_full.split(";")[0].strip().lower()
    body_params = {}
    if body:
        if ctype == "application/json":
            try:
                parsed = parse_json(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise GraphError(400, 100, "Invalid parameter: request body is not valid JSON (%s)" % exc,
                                 subcode=SUB_PARAM)
            if not isinstance(parsed, dict):
                raise GraphError(400, 100, "Invalid parameter: JSON body must be an object", subcode=SUB_PARAM)
            body_params = parsed
        elif ctype == "application/x-www-form-urlencoded":
            try:
                pairs = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True,
                                              strict_parsing=False)
            except UnicodeDecodeError:
                raise GraphError(400, 100, "Invalid parameter: form body is not UTF-8")
            for key, values in pairs.items():
                if len(values) > 1:
                    raise param_error(key, "is given more than once in the form body")
                body_params[key] = values[0]
        elif ctype == "multipart/form-data":
            body_params = parse_form_multipart(ctype_full, body)
        else:
            raise GraphError(400, 100, "Invalid parameter: unsupported Content-Type %r; send "
                                       "application/json or application/x-www-form-urlencoded" % ctype_full)

    for key, value in body_params.items():
        if key in params:
            if key == "access_token" and params[key] == value:
                continue
            raise param_error(key, "is given both in the query string and in the body")
        params[key] = value
    return params


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meta-capi-standin/1"

    # -- plumbing ---------------------------------------------------------

    def log_message(self, fmt, *args):  # silence default access log
        pass

    def log_line(self, status, note):
        sys.stderr.write("%s %s %s -> %d %s\n" % (
            time.strftime("%H:%M:%S"), self.command, redact(self.path), status, note))
        sys.stderr.flush()

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status, obj, trace=None):
        data = dump_json(obj).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            if trace:
                self.send_header("x-fb-trace-id", trace)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    @property
    def state(self):
        return self.server.state

    # -- routing ----------------------------------------------------------

    def do_GET(self):
        self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_standin/events":
            with self.state.lock:
                out = {"events": list(self.state.events), "duplicates": self.state.duplicates}
            self.send_json(200, out)
            self.log_line(200, "events=%d" % len(out["events"]))
        elif path == "/_standin/requests":
            with self.state.lock:
                out = {"requests": list(self.state.requests)}
            self.send_json(200, out)
            self.log_line(200, "requests=%d" % len(out["requests"]))
        else:
            self.graph_error(unsupported_request_error("GET", path), record=True)

    def do_POST(self):
        body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_standin/reset":
            with self.state.lock:
                self.state.reset()
            self.send_json(200, {"ok": True})
            self.log_line(200, "reset")
            return
        if path == "/_standin/fail":
            self.configure_fail(body)
            return
        m = VERSION_PATH_RE.fullmatch(path)
        if m is None:
            self.graph_error(unsupported_request_error("POST", path), record=True)
            return
        self.post_events(m.group(2), body)

    def do_PUT(self):
        self.read_body()
        self.graph_error(unsupported_request_error("PUT", urllib.parse.urlsplit(self.path).path), record=True)

    def do_DELETE(self):
        self.read_body()
        self.graph_error(unsupported_request_error("DELETE", urllib.parse.urlsplit(self.path).path),
                         record=True)

    # -- control ----------------------------------------------------------

    def configure_fail(self, body):
        try:
            spec = parse_json(body.decode("utf-8") or "{}")
            if not isinstance(spec, dict):
                raise ValueError("body must be a JSON object")
            unknown = set(spec) - {"status", "count", "delay_ms", "error"}
            if unknown:
                raise ValueError("unknown keys %s" % sorted(unknown))
            status = int(spec["status"]) if "status" in spec else None
            delay_ms = int(spec["delay_ms"]) if "delay_ms" in spec else 0
            count = int(spec.get("count", RawNumber("1")))
            overrides = spec.get("error", {})
            if status is None and delay_ms <= 0:
                raise ValueError("give \"status\" (400-599) and/or \"delay_ms\" (> 0)")
            if status is not None and not 400 <= status <= 599:
                raise ValueError("status must be between 400 and 599")
            if count < 1 or delay_ms < 0:
                raise ValueError("count must be >= 1 and delay_ms >= 0")
            if not isinstance(overrides, dict):
                raise ValueError("error must be an object")
            overrides = {k: (int(v) if is_int(v) else v) for k, v in overrides.items()}
        except (ValueError, KeyError, TypeError) as exc:
            self.send_json(400, {"error": str(exc)})
            self.log_line(400, "fail control rejected: %s" % exc)
            return
        rule = {"status": status, "delay_ms": delay_ms, "count": count, "error": overrides}
        with self.state.lock:
            self.state.fail_rule = dict(rule)
        self.send_json(200, {"ok": True, "pending": rule})
        self.log_line(200, "fail rule %s" % dump_json(rule))

    # -- Graph errors & recording -----------------------------------------

    def record(self, status, error=None, pixel_id=None, events=None, test_event_code=None):
        entry = {
            "method": self.command,
            "path": redact(self.path),
            "status": status,
            "error": error,
            "pixel_id": pixel_id,
            "events_received": len(events) if events is not None else 0,
            "test_event_code": test_event_code,
            "events": events if events is not None else [],
            "received_at": time.time(),
        }
        with self.state.lock:
            self.state.requests.append(entry)

    def graph_error(self, err, record=True, pixel_id=None):
        trace = new_trace_id()
        self.send_json(err.status, err.body(trace), trace)
        if record:
            self.record(err.status, error=err.message, pixel_id=pixel_id)
        self.log_line(err.status, "code=%s %s" % (err.code, err.message))

    # -- the events edge --------------------------------------------------

    def post_events(self, pixel_id, body):
        rule = self.state.take_fail_rule()
        if rule is not None:
            if rule["delay_ms"]:
                time.sleep(rule["delay_ms"] / 1000.0)
            if rule["status"] is not None:
                self.graph_error(injected_error(rule["status"], rule["error"]), pixel_id=pixel_id)
                return

        cfg = self.server.cfg
        try:
            params = collect_params(self, body)

            tokens = params.get("access_token")
            if tokens is None or (is_str(tokens) and tokens == ""):
                raise missing_token_error()
            if not is_str(tokens) or tokens not in cfg.tokens:
                raise invalid_token_error()

            for key in params:
                if key not in BODY_KEYS:
                    raise param_error(key, 'Unexpected key "%s" in the request body' % key)
            for key in BODY_KEYS - {"data"}:
                if key in params:
                    _check_str(params[key], key, allow_empty=(key == "appsecret_proof"))

            if "data" not in params:
                raise param_error("data", "is required (an array of server events)")
            data = params["data"]
            if is_str(data):
                try:
                    data = parse_json(data)
                except ValueError as exc:
                    raise param_error("data", "is not valid JSON (%s)" % exc)
            if not isinstance(data, list):
                raise param_error("data", "must be an array of server events, got %s" % type_name(data))
            if not data:
                raise param_error("data", "must contain at least one event")
            if len(data) > MAX_EVENTS:
                raise param_error("data", "contains %d events; at most %d events may be sent per request"
                                  % (len(data), MAX_EVENTS))

            now = int(time.time())
            for i, ev in enumerate(data):
                validate_event(ev, i, now, cfg)
        except GraphError as err:
            self.graph_error(err, pixel_id=pixel_id)
            return

        test_code = params.get("test_event_code")
        received_at = time.time()
        with self.state.lock:
            for ev in data:
                eid = ev.get("event_id")
                key = (pixel_id, ev["event_name"], eid) if eid is not None else None
                first = self.state.dedup_index.get(key) if key else None
                if first is not None and received_at - first["received_at"] <= DEDUP_WINDOW_SECONDS:
                    first["duplicates_suppressed"] += 1
                    self.state.duplicates += 1
                    continue
                rec = {
                    "pixel_id": pixel_id,
                    "test_event_code": test_code,
                    "event": ev,
                    "value_text": value_text_of(ev),
                    "received_at": received_at,
                    "duplicates_suppressed": 0,
                }
                self.state.events.append(rec)
                if key:
                    self.state.dedup_index[key] = rec
        self.record(200, pixel_id=pixel_id, events=data, test_event_code=test_code)
        trace = new_trace_id()
        self.send_json(200, {"events_received": len(data), "messages": [], "fbtrace_id": trace}, trace)
        self.log_line(200, "pixel=%s events=%d%s" % (
            pixel_id, len(data), " test_event_code=%s" % test_code if test_code else ""))


def redact(path):
    split = urllib.parse.urlsplit(path)
    if not split.query:
        return path
    pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    pairs = [(k, "<redacted>" if k in ("access_token", "appsecret_proof") else v) for k, v in pairs]
    return urllib.parse.urlunsplit(("", "", split.path, urllib.parse.urlencode(pairs, safe="<>"), ""))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Strict local stand-in for Meta's Conversions API.")
    ap.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--access-token", action="append", required=True, dest="tokens",
                    help="an accepted access token (repeatable)")
    ap.add_argument("--future-tolerance-seconds", type=int, default=60,
                    help="how far event_time may lie in the future (default 60)")
    ap.add_argument("--max-age-seconds", type=int, default=7 * 24 * 3600,
                    help="how far event_time may lie in the past (default 7 days)")
    cfg = ap.parse_args(argv)
    cfg.tokens = set(t for t in cfg.tokens if t)
    if not cfg.tokens:
        ap.error("--access-token must not be empty")

    server = Server(("127.0.0.1", cfg.port), Handler)
    server.state = State()
    server.cfg = cfg
    return standin_server.serve(server)


if __name__ == "__main__":
    sys.exit(main())
