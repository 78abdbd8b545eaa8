#!/usr/bin/env python3
"""Strict local stand-in for the Google Ads API (REST) conversion uploads and Google's
OAuth 2.0 token endpoint, for tests on a machine that cannot reach Google.

Python 3 standard library only.  Usage:

  google_ads.py --port N --developer-token T --client-id C --client-secret S \
                --refresh-token R [--conversion-action ID ...] [--token-lifetime SECONDS]

It binds 127.0.0.1, prints exactly one line "listening <port>" on stdout and serves until
SIGTERM (or SIGINT).  One log line per request goes to stderr.

Endpoints (Google's):
  POST /token  (also /oauth2/v3/token)             OAuth 2.0 refresh-token grant
  POST /vNN/customers/{customerId}:uploadClickConversions        NN = 17..22
  POST /vNN/customers/{customerId}:uploadConversionAdjustments
Control endpoints (not Google's; JSON):
  GET  /_standin/conversions   accepted click conversions (as received, numbers verbatim)
  GET  /_standin/adjustments   accepted conversion adjustments
  GET  /_standin/requests      every API request: path, headers of interest, status, error
  POST /_standin/fail          {"status": 500|503|429|..., "count": n, "delay_ms": ms}
  POST /_standin/expire-tokens every issued access token becomes expired
  POST /_standin/reset         forget conversions, adjustments, requests, injected faults
                               ({"tokens": true} also forgets issued access tokens)

Where each rule comes from (documentation read; wording and code here are our own):
 [PROTO-CU]  ConversionUploadService reference, v17..v22: UploadClickConversionsRequest,
             UploadClickConversionsResponse, ClickConversion, ClickConversionResult,
             CustomVariable, CartData, ExternalAttributionData, SessionAttribute* --
             developers.google.com/google-ads/api/reference/rpc/vNN/UploadClickConversionsRequest
             (and the proto google/ads/googleads/vNN/services/conversion_upload_service.proto).
             Gives: the REST path, field names, partial_failure "required / always true",
             validate_only "only errors are returned, not results", job_id range, response
             job_id (int64 -> JSON string), "results empty for rows that received an error",
             date-time format "yyyy-mm-dd hh:mm:ss+|-hh:mm", currency ISO 4217 3 letters,
             one order id per conversion action, user identifiers hashed email/phone only,
             at most 5; debug_enabled exists in v17..v20 only, customer_type and session
             attributes from v19, user_ip_address from v20.
 [PROTO-CA]  ConversionAdjustmentUploadService reference, v17..v22: ConversionAdjustment,
             RestatementValue, GclidDateTimePair, ConversionAdjustmentResult -- adjustment
             date must be after the conversion's, restatement_value required for RESTATEMENT
             and an error for RETRACTION, order_id required for ENHANCEMENT, user
             identifiers/user_agent only in enhancements, order id must be used when the
             conversion had one, otherwise gclid_date_time_pair.
 [PROTO-UID] UserIdentifier / OfflineUserAddressInfo (common/offline_user_data.proto) and
             Consent (common/consent.proto: ad_personalization only for
             OfflineUserDataJobService and UserDataService); enums ConsentStatus,
             UserIdentifierSource, ConversionEnvironment, ConversionCustomerType,
             ConversionAdjustmentType ("UNKNOWN" is for return values only).
 [ERR]       GoogleAdsFailure / GoogleAdsError / ErrorCode / ErrorLocation (errors/errors.proto)
             and the error enums ConversionUploadError, ConversionAdjustmentUploadError,
             PartialFailureError, AuthenticationError (DEVELOPER_TOKEN_INVALID from v19),
             AuthorizationError, HeaderError, RequestError, FieldError, DateError,
             CollectionSizeError, CurrencyCodeError, InternalError, QuotaError --
             developers.google.com/google-ads/api/reference/rpc/vNN/<Name>ErrorEnum.<Name>Error
 [PF]        developers.google.com/google-ads/api/docs/best-practices/partial-failures
             (partial_failure_error is a google.rpc.Status whose details hold one
             GoogleAdsFailure; errors located by fieldPathElements with the operation index).
 [APIERR]    developers.google.com/google-ads/api/docs/best-practices/understand-api-errors
             and .../docs/get-started/handle-errors: google.rpc.Status, canonical code <->
             HTTP status table (INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED
             403, RESOURCE_EXHAUSTED 429, INTERNAL 500, UNAVAILABLE 503, ...), GoogleAdsFailure
             in details with requestId.  REST shape {"error": {code, message, status,
             details}} as in Google's API error model (cloud.google.com/apis/design/errors);
             malformed JSON bodies answered with a google.rpc.BadRequest detail.
 [COMMON]    developers.google.com/google-ads/api/docs/get-started/common-errors
             (customer ids without hyphens: CLIENT_CUSTOMER_ID_INVALID; invalid_grant).
 [AUTH]      developers.google.com/google-ads/api/rest/auth: "Authorization: Bearer",
             "developer-token", optional "login-customer-id" (manager id, digits only), the
             "request-id" response header, token request grant_type/client_id/client_secret/
             refresh_token, scope https://www.googleapis.com/auth/adwords.
 [LCID]      developers.google.com/google-ads/api/docs/migration/login-customer-id
 [CLICKS]    developers.google.com/google-ads/api/docs/conversions/upload-clicks
             (legacy_oci_guide): gbraid+wbraid -> GBRAID_WBRAID_BOTH_SET; gbraid/wbraid with
             gclid or user_identifiers -> VALUE_MUST_BE_UNSET.
 [EC]        developers.google.com/google-ads/api/docs/conversions/enhance-conversions and
             upload-online: SHA-256 of the normalised value (trimmed, lower-cased, E.164).
 [OAUTH]     developers.google.com/identity/protocols/oauth2/web-server#offline (refresh
             request and response fields) and RFC 6749 sections 5.1, 5.2 and 6 (error codes
             invalid_request/invalid_client (401)/invalid_grant/unsupported_grant_type,
             Cache-Control: no-store); RFC 6750 section 3 (WWW-Authenticate on 401).
 [BLOG-ADJ]  developers.google.com/ads/blog/posts/2024/08/improvements-to-conversion-adjustment
             (two adjustment error codes stopped being returned synchronously; the copy read
             did not show which -- see the note at CONVERSION_NOT_FOUND below).
 [STANDIN]   A rule of this stand-in, stricter than or not stated by the documentation.
"""

import argparse
import datetime as dt
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

MIN_VERSION, MAX_VERSION = 17, 22
MAX_ROWS = 2000                      # [ERR] TOO_MANY_CONVERSIONS_IN_REQUEST / _ADJUSTMENTS_
MAX_USER_IDENTIFIERS = 5             # [PROTO-CU] [PROTO-CA]
CLICK_WINDOW_DAYS = 90               # [STANDIN] longest click-through window; EXPIRED_EVENT [ERR]
ADJUSTMENT_WINDOW_DAYS = 54          # [ERR] CONVERSION_EXPIRED
ADWORDS_SCOPE = "https://www.googleapis.com/auth/adwords"   # [AUTH]
MAX_BODY = 64 * 1024 * 1024


# --------------------------------------------------------------------------- JSON

class JNum:
    """A JSON number kept as its exact text."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return "JNum(%s)" % self.text


class JsonSyntax(Exception):
    pass


def _reject_constant(name):
    raise JsonSyntax("Invalid JSON payload received. Unexpected token %s." % name)


def _object_pairs(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise JsonSyntax('Invalid JSON payload received. Field "%s" appears twice.' % key)
        obj[key] = value
    return obj


def parse_json(text):
    return json.loads(text, parse_float=JNum, parse_int=JNum,
                      parse_constant=_reject_constant, object_pairs_hook=_object_pairs)


def dump_json(value):
    """Serialise, writing JNum values back verbatim."""
    if isinstance(value, JNum):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(json.dumps(str(k)) + ": " + dump_json(v)
                               for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dump_json(v) for v in value) + "]"
    return json.dumps(value)


def render(value):
    if isinstance(value, JNum):
        return value.text
    try:
        text = dump_json(value)
    except Exception:  # pragma: no cover
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def snake(name):
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


# --------------------------------------------------------------------------- schema
# Proto3 JSON as accepted here [PROTO-*]: lowerCamelCase names only [STANDIN], null means
# "unset", doubles must be JSON numbers [STANDIN], int32/int64 numbers or decimal strings,
# enums by name only [STANDIN], at most one member of a oneof.

STRING, BOOL, DOUBLE, INT32, INT64, BYTES = (
    "TYPE_STRING", "TYPE_BOOL", "TYPE_DOUBLE", "TYPE_INT32", "TYPE_INT64", "TYPE_BYTES")


class Enum:
    def __init__(self, qualified, values):
        self.qualified = qualified
        self.values = values


class Msg:
    def __init__(self, qualified, fields, oneofs=None):
        self.qualified = qualified
        self.fields = fields          # json name -> Field
        for oneof, members in (oneofs or {}).items():
            for member in members:
                fields[member].oneof = oneof


class Rep:
    def __init__(self, elem):
        self.elem = elem


class Field:
    def __init__(self, spec, min_v=MIN_VERSION, max_v=MAX_VERSION):
        self.spec = spec
        self.min_v = min_v
        self.max_v = max_v
        self.oneof = None


def F(spec, min_v=MIN_VERSION, max_v=MAX_VERSION):
    return Field(spec, min_v, max_v)


E_CONSENT = Enum("enums.ConsentStatusEnum.ConsentStatus",
                 ["UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"])
E_UID_SOURCE = Enum("enums.UserIdentifierSourceEnum.UserIdentifierSource",
                    ["UNSPECIFIED", "UNKNOWN", "FIRST_PARTY", "THIRD_PARTY"])
E_ENVIRONMENT = Enum("enums.ConversionEnvironmentEnum.ConversionEnvironment",
                     ["UNSPECIFIED", "UNKNOWN", "APP", "WEB"])
E_CUSTOMER_TYPE = Enum("enums.ConversionCustomerTypeEnum.ConversionCustomerType",
                       ["UNSPECIFIED", "UNKNOWN", "NEW", "RETURNING"])
E_ADJ_TYPE = Enum("enums.ConversionAdjustmentTypeEnum.ConversionAdjustmentType",
                  ["UNSPECIFIED", "UNKNOWN", "RETRACTION", "RESTATEMENT", "ENHANCEMENT"])

M_ADDRESS = Msg("common.OfflineUserAddressInfo", {
    "hashedFirstName": F(STRING), "hashedLastName": F(STRING), "city": F(STRING),
    "state": F(STRING), "countryCode": F(STRING), "postalCode": F(STRING),
    "hashedStreetAddress": F(STRING)})
M_USER_IDENTIFIER = Msg("common.UserIdentifier", {
    "userIdentifierSource": F(E_UID_SOURCE), "hashedEmail": F(STRING),
    "hashedPhoneNumber": F(STRING), "mobileId": F(STRING), "thirdPartyUserId": F(STRING),
    "addressInfo": F(M_ADDRESS)},
    {"identifier": ["hashedEmail", "hashedPhoneNumber", "mobileId", "thirdPartyUserId",
                    "addressInfo"]})
M_CONSENT = Msg("common.Consent", {"adUserData": F(E_CONSENT),
                                   "adPersonalization": F(E_CONSENT)})
M_EXT_ATTR = Msg("services.ExternalAttributionData", {
    "externalAttributionCredit": F(DOUBLE), "externalAttributionModel": F(STRING)})
M_CUSTOM_VAR = Msg("services.CustomVariable", {"conversionCustomVariable": F(STRING),
                                               "value": F(STRING)})
M_CART_ITEM = Msg("services.CartData.Item", {"productId": F(STRING), "quantity": F(INT32),
                                             "unitPrice": F(DOUBLE)})
M_CART = Msg("services.CartData", {
    "merchantId": F(INT64), "feedCountryCode": F(STRING), "feedLanguageCode": F(STRING),
    "localTransactionCost": F(DOUBLE), "items": F(Rep(M_CART_ITEM))})
M_SESSION_KV = Msg("services.SessionAttributeKeyValuePair", {
    "sessionAttributeKey": F(STRING), "sessionAttributeValue": F(STRING)})
M_SESSION_KVS = Msg("services.SessionAttributesKeyValuePairs", {
    "keyValuePairs": F(Rep(M_SESSION_KV))})
M_CLICK = Msg("services.ClickConversion", {
    "gclid": F(STRING), "gbraid": F(STRING), "wbraid": F(STRING),
    "conversionAction": F(STRING), "conversionDateTime": F(STRING),
    "conversionValue": F(DOUBLE), "currencyCode": F(STRING), "orderId": F(STRING),
    "externalAttributionData": F(M_EXT_ATTR), "customVariables": F(Rep(M_CUSTOM_VAR)),
    "cartData": F(M_CART), "userIdentifiers": F(Rep(M_USER_IDENTIFIER)),
    "conversionEnvironment": F(E_ENVIRONMENT), "consent": F(M_CONSENT),
    "customerType": F(E_CUSTOMER_TYPE, 19),
    "userIpAddress": F(STRING, 20),
    "sessionAttributesEncoded": F(BYTES, 19),
    "sessionAttributesKeyValuePairs": F(M_SESSION_KVS, 19)},
    {"session_attributes": ["sessionAttributesEncoded", "sessionAttributesKeyValuePairs"]})
M_UCC_REQUEST = Msg("services.UploadClickConversionsRequest", {
    "conversions": F(Rep(M_CLICK)), "partialFailure": F(BOOL), "validateOnly": F(BOOL),
    "debugEnabled": F(BOOL, MIN_VERSION, 20), "jobId": F(INT32)})

M_GCLID_PAIR = Msg("services.GclidDateTimePair", {"gclid": F(STRING),
                                                  "conversionDateTime": F(STRING)})
M_RESTATEMENT = Msg("services.RestatementValue", {"adjustedValue": F(DOUBLE),
                                                  "currencyCode": F(STRING)})
M_ADJUSTMENT = Msg("services.ConversionAdjustment", {
    "gclidDateTimePair": F(M_GCLID_PAIR), "orderId": F(STRING),
    "conversionAction": F(STRING), "adjustmentDateTime": F(STRING),
    "adjustmentType": F(E_ADJ_TYPE), "restatementValue": F(M_RESTATEMENT),
    "userIdentifiers": F(Rep(M_USER_IDENTIFIER)), "userAgent": F(STRING)})
M_UCA_REQUEST = Msg("services.UploadConversionAdjustmentsRequest", {
    "conversionAdjustments": F(Rep(M_ADJUSTMENT)), "partialFailure": F(BOOL),
    "validateOnly": F(BOOL), "jobId": F(INT32)})


class PayloadError(Exception):
    def __init__(self, field, description):
        Exception.__init__(self, description)
        self.field = field
        self.description = description


INT_RE = re.compile(r"^-?(0|[1-9][0-9]*)$")
B64_RE = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
INT_RANGE = {INT32: (-2 ** 31, 2 ** 31 - 1), INT64: (-2 ** 63, 2 ** 63 - 1)}


def _join(path, name):
    return name if not path else path + "." + name


def check_payload(value, spec, path, ver, vtag):
    """Validate the JSON shape against the proto; return a copy without nulls."""
    def bad(type_text):
        raise PayloadError(path, "Invalid value at '%s' (%s), %s"
                           % (path or "request body", type_text, render(value)))

    if isinstance(spec, Msg):
        if not isinstance(value, dict):
            bad("type.googleapis.com/google.ads.googleads.%s.%s" % (vtag, spec.qualified))
        out, oneof_seen = {}, {}
        for key, raw in value.items():
            field = spec.fields.get(key)
            if field is None or not field.min_v <= ver <= field.max_v:
                where = " at '%s'" % path if path else ""
                raise PayloadError(path, 'Invalid JSON payload received. Unknown field name "%s"%s '
                                   '(not a field of %s in %s).' % (key, where, spec.qualified, vtag))
            if raw is None:
                continue
            sub = _join(path, snake(key))
            if field.oneof:
                if field.oneof in oneof_seen:
                    raise PayloadError(sub, "Invalid JSON payload received. oneof '%s' at '%s' is "
                                       "already set by '%s'; '%s' cannot be set too."
                                       % (field.oneof, path or "<request>", oneof_seen[field.oneof], key))
                oneof_seen[field.oneof] = key
            out[key] = check_payload(raw, field.spec, sub, ver, vtag)
        return out
    if isinstance(spec, Rep):
        if not isinstance(value, list):
            bad("repeated field")
        out = []
        for i, item in enumerate(value):
            where = "%s[%d]" % (path, i)
            if item is None:
                raise PayloadError(where, "Invalid value at '%s': null is not a valid list "
                                   "element." % where)
            out.append(check_payload(item, spec.elem, where, ver, vtag))
        return out
    if isinstance(spec, Enum):
        if not isinstance(value, str) or value not in spec.values:
            bad("type.googleapis.com/google.ads.googleads.%s.%s" % (vtag, spec.qualified))
        return value
    if spec == STRING:
        if not isinstance(value, str):
            bad(STRING)
        return value
    if spec == BOOL:
        if not isinstance(value, bool):
            bad(BOOL)
        return value
    if spec == DOUBLE:
        if not isinstance(value, JNum):
            bad(DOUBLE)
        return value
    if spec in (INT32, INT64):
        text = value.text if isinstance(value, JNum) else value if isinstance(value, str) else None
        if text is None or not INT_RE.match(text):
            bad(spec)
        number = int(text)
        low, high = INT_RANGE[spec]
        if not low <= number <= high:
            bad(spec)
        return number
    if spec == BYTES:
        if not isinstance(value, str) or not B64_RE.match(value):
            bad(BYTES)
        return value
    raise AssertionError(spec)


# --------------------------------------------------------------------------- Ads errors

class AdsError:
    def __init__(self, family, code, message, path=(), trigger=None):
        self.family = family          # e.g. "conversionUploadError" [ERR] ErrorCode oneof
        self.code = code
        self.message = message
        self.path = list(path)        # [(proto field name, index or None)]
        self.trigger = trigger

    def path_text(self):
        out = ""
        for name, index in self.path:
            out += ("." if out else "") + name + ("" if index is None else "[%d]" % index)
        return out

    def to_json(self):
        body = {"errorCode": {self.family: self.code}, "message": self.message}
        if self.trigger is not None:
            body["trigger"] = {"stringValue": self.trigger}
        if self.path:
            elems = []
            for name, index in self.path:
                elem = {"fieldName": name}
                if index is not None:
                    elem["index"] = index
                elems.append(elem)
            body["location"] = {"fieldPathElements": elems}
        return body


def new_request_id():
    return secrets.token_urlsafe(16)[:22]


def ads_failure(vtag, errors, request_id):
    return {"@type": "type.googleapis.com/google.ads.googleads.%s.errors.GoogleAdsFailure" % vtag,
            "errors": [e.to_json() for e in errors], "requestId": request_id}


CANONICAL = {  # [APIERR] HTTP status -> canonical code name
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def rpc_error(http, message, details):
    return {"error": {"code": http, "message": message, "status": CANONICAL[http],
                      "details": details}}


def partial_failure_status(vtag, errors, request_id):
    first = errors[0]
    message = first.message + (", at " + first.path_text() if first.path else "")
    if len(errors) > 1:
        message = "%d errors in details; the first: %s" % (len(errors), message)
    return {"code": 3, "message": message, "details": [ads_failure(vtag, errors, request_id)]}


# --------------------------------------------------------------------------- field checks

DATE_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})([+-])(\d{2}):(\d{2})$")
ACTION_RE = re.compile(r"^customers/(\d+)/conversionActions/(\d+)$")
CUSTOM_VAR_RE = re.compile(r"^customers/(\d+)/conversionCustomVariables/(\d+)$")
CUSTOMER_ID_RE = re.compile(r"^\d{10}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
GCLID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
BRAID_RE = re.compile(r"^[\x21-\x7e]+$")
EMAIL_LIKE_RE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def parse_date_time(text):
    """Return (aware datetime, None) or (None, DateError code) [PROTO-CU] [ERR]."""
    m = DATE_TIME_RE.match(text)
    if not m:
        return None, "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    if int(oh) > 14 or int(om) > 59 or (int(oh) == 14 and int(om) > 0):
        return None, "INVALID_FIELD_VALUES_IN_DATE_TIME"
    try:
        offset = dt.timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
        value = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                            tzinfo=dt.timezone(offset))
    except ValueError:
        return None, "INVALID_FIELD_VALUES_IN_DATE_TIME"
    return value, None


DATE_MESSAGES = {
    "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET":
        "date-time must be written yyyy-mm-dd hh:mm:ss+|-hh:mm (a space between date and time, "
        "seconds, and a UTC offset with a colon)",
    "INVALID_FIELD_VALUES_IN_DATE_TIME": "date-time names no real calendar date, time or offset",
}


class RowContext:
    def __init__(self, customer, vtag, vnum, now, known_actions):
        self.customer = customer
        self.vtag = vtag
        self.vnum = vnum
        self.now = now
        self.known_actions = known_actions


def check_action(value, ctx, base, family):
    """conversion_action resource name [PROTO-CU] [PROTO-CA]; returns (action id, error)."""
    path = base + [("conversion_action", None)]
    if value is None:
        return None, AdsError("fieldError", "REQUIRED", "conversion_action is required", path)
    m = ACTION_RE.match(value)
    if not m or not CUSTOMER_ID_RE.match(m.group(1)):
        return None, AdsError("requestError", "RESOURCE_NAME_MALFORMED",
                              "conversion_action must be customers/{10-digit customer id}/"
                              "conversionActions/{id}", path, value)
    if m.group(1) != ctx.customer:
        # [STANDIN] The reference says validation ignores the customer part and looks the
        # action up by id alone; this stand-in requires it to name the uploading customer.
        return None, AdsError(family, "NO_CONVERSION_ACTION_FOUND",
                              "conversion_action names customer %s but the upload is for customer "
                              "%s (stand-in rule)" % (m.group(1), ctx.customer), path, value)
    if ctx.known_actions is not None and m.group(2) not in ctx.known_actions:
        return None, AdsError(family, "NO_CONVERSION_ACTION_FOUND",
                              "conversion_action %s is not a conversion action of this customer"
                              % value, path, value)
    return m.group(2), None


def check_date(value, ctx, path, name, future_ok=False):
    """Required date-time in the documented format, not in the future [STANDIN]."""
    if value is None:
        return None, AdsError("fieldError", "REQUIRED", "%s is required" % name, path)
    parsed, code = parse_date_time(value)
    if code:
        return None, AdsError("dateError", code, "%s: %s" % (name, DATE_MESSAGES[code]), path, value)
    if not future_ok and parsed > ctx.now:
        return None, AdsError("dateError", "LATER_THAN_MAXIMUM_DATE",
                              "%s lies in the future" % name, path, value)
    return parsed, None


def check_currency(value, path, name="currency_code"):
    if value is not None and not CURRENCY_RE.match(value):
        return AdsError("currencyCodeError", "UNSUPPORTED",
                        "%s must be an ISO 4217 code of three capital letters" % name, path, value)
    return None


def check_finite(value, path, name):
    try:
        number = float(value.text)
    except ValueError:  # pragma: no cover - the JSON decoder only yields numbers
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        return AdsError("fieldError", "INVALID_VALUE", "%s must be a finite number" % name,
                        path, value.text)
    return None


def check_enum_value(value, path, name):
    if value == "UNKNOWN":  # [PROTO-UID] UNKNOWN is for return values only
        return AdsError("requestError", "INVALID_ENUM_VALUE",
                        "%s may not be UNKNOWN in a request" % name, path, value)
    return None


def check_user_identifiers(uids, base, family, allowed):
    """[PROTO-UID] one identifier each; hashed values 64 lowercase hex [EC]."""
    if len(uids) > MAX_USER_IDENTIFIERS:
        return AdsError("collectionSizeError", "TOO_MANY",
                        "at most %d user_identifiers per row" % MAX_USER_IDENTIFIERS,
                        base + [("user_identifiers", None)])
    for k, uid in enumerate(uids):
        p = base + [("user_identifiers", k)]
        err = check_enum_value(uid.get("userIdentifierSource"),
                               p + [("user_identifier_source", None)], "user_identifier_source")
        if err:
            return err
        kinds = [key for key in ("hashedEmail", "hashedPhoneNumber", "mobileId",
                                 "thirdPartyUserId", "addressInfo") if key in uid]
        if not kinds:
            return AdsError("fieldError", "REQUIRED",
                            "user_identifiers[%d] sets no identifier (%s)"
                            % (k, " / ".join(snake(a) for a in allowed)), p)
        kind = kinds[0]
        kp = p + [(snake(kind), None)]
        if kind not in allowed:
            return AdsError(family, "UNSUPPORTED_USER_IDENTIFIER",
                            "%s is not accepted here; use %s"
                            % (snake(kind), " / ".join(snake(a) for a in allowed)), kp)
        if kind in ("hashedEmail", "hashedPhoneNumber"):
            if not HEX64_RE.match(uid[kind]):
                return AdsError(family, "INVALID_USER_IDENTIFIER",
                                "%s must be the SHA-256 digest of the normalised value as 64 "
                                "lowercase hex digits; the value received is not one" % snake(kind), kp)
        elif kind == "addressInfo":
            addr = uid[kind]
            if not addr:
                return AdsError("fieldError", "REQUIRED", "address_info is empty", kp)
            for key in ("hashedFirstName", "hashedLastName", "hashedStreetAddress"):
                if key in addr and not HEX64_RE.match(addr[key]):
                    return AdsError(family, "INVALID_USER_IDENTIFIER",
                                    "address_info.%s must be 64 lowercase hex digits (SHA-256 of the "
                                    "normalised value)" % snake(key), kp + [(snake(key), None)])
            if "countryCode" in addr and not COUNTRY_RE.match(addr["countryCode"]):
                return AdsError("fieldError", "INVALID_VALUE",
                                "address_info.country_code must be an ISO 3166-1 alpha-2 code",
                                kp + [("country_code", None)], addr["countryCode"])
    return None


def validate_click(i, c, ctx):
    """Row checks for one ClickConversion; returns (error or None, facts)."""
    base = [("conversions", i)]
    facts = {}
    action_id, err = check_action(c.get("conversionAction"), ctx, base, "conversionUploadError")
    if err:
        return err, facts
    facts["action_id"] = action_id

    gclid, gbraid, wbraid = c.get("gclid"), c.get("gbraid") or None, c.get("wbraid") or None
    uids = c.get("userIdentifiers") or []
    if gbraid and wbraid:  # [CLICKS]
        return AdsError("conversionUploadError", "GBRAID_WBRAID_BOTH_SET",
                        "gbraid and wbraid are both set; send one", base + [("wbraid", None)]), facts
    braid_name = "gbraid" if gbraid else "wbraid" if wbraid else None
    if braid_name and gclid is not None:  # [CLICKS]
        return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                        "%s cannot be combined with gclid" % braid_name,
                        base + [(braid_name, None)]), facts
    if braid_name and uids:  # [CLICKS]
        return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                        "%s cannot be combined with user_identifiers" % braid_name,
                        base + [(braid_name, None)]), facts
    if gclid is None and not braid_name and not uids:
        return AdsError("requestError", "REQUIRED_FIELD_MISSING",
                        "a click conversion needs gclid, gbraid, wbraid or user_identifiers",
                        base), facts
    if gclid is not None and not GCLID_RE.match(gclid):  # [STANDIN] base64url alphabet
        return AdsError("conversionUploadError", "UNPARSEABLE_GCLID", "gclid cannot be decoded",
                        base + [("gclid", None)], gclid), facts
    if braid_name and not BRAID_RE.match(gbraid or wbraid):
        return AdsError("conversionUploadError", "UNPARSEABLE_" + braid_name.upper(),
                        "%s cannot be decoded" % braid_name, base + [(braid_name, None)]), facts
    if gclid is not None:
        facts["click"] = ("gclid", gclid)
    elif braid_name:
        facts["click"] = (braid_name, gbraid or wbraid)

    when, err = check_date(c.get("conversionDateTime"), ctx,
                           base + [("conversion_date_time", None)], "conversion_date_time")
    if err:
        return err, facts
    if when < ctx.now - dt.timedelta(days=CLICK_WINDOW_DAYS):
        return AdsError("conversionUploadError", "EXPIRED_EVENT",
                        "conversion_date_time is more than %d days ago, outside any click-through "
                        "window" % CLICK_WINDOW_DAYS, base + [("conversion_date_time", None)],
                        c["conversionDateTime"]), facts
    facts["when"] = when

    if "conversionValue" in c:
        err = check_finite(c["conversionValue"], base + [("conversion_value", None)],
                           "conversion_value")
        if err:
            return err, facts
    err = check_currency(c.get("currencyCode"), base + [("currency_code", None)])
    if err:
        return err, facts
    if "orderId" in c:
        order = c["orderId"]
        if order == "":  # [STANDIN]
            return AdsError("fieldError", "INVALID_VALUE", "order_id is set but empty",
                            base + [("order_id", None)]), facts
        if EMAIL_LIKE_RE.search(order):
            return AdsError("conversionUploadError", "ORDER_ID_CONTAINS_PII",
                            "order_id looks like it contains an e-mail address",
                            base + [("order_id", None)]), facts
        facts["order_id"] = order

    err = check_user_identifiers(uids, base, "conversionUploadError",
                                 ("hashedEmail", "hashedPhoneNumber"))
    if err:
        return err, facts

    consent = c.get("consent") or {}
    err = check_enum_value(consent.get("adUserData"), base + [("consent", None), ("ad_user_data", None)],
                           "consent.ad_user_data")
    if err:
        return err, facts
    if consent.get("adPersonalization", "UNSPECIFIED") != "UNSPECIFIED":  # [PROTO-UID]
        return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                        "consent.ad_personalization can only be set for OfflineUserDataJobService "
                        "and UserDataService", base + [("consent", None), ("ad_personalization", None)],
                        consent["adPersonalization"]), facts

    for name in ("conversionEnvironment", "customerType"):
        err = check_enum_value(c.get(name), base + [(snake(name), None)], snake(name))
        if err:
            return err, facts

    if "externalAttributionData" in c:  # [ERR] actions modelled here are not externally attributed
        return AdsError("conversionUploadError",
                        "EXTERNAL_ATTRIBUTION_DATA_SET_FOR_NON_EXTERNALLY_ATTRIBUTED_CONVERSION_ACTION",
                        "external_attribution_data is only for externally attributed conversion "
                        "actions", base + [("external_attribution_data", None)]), facts

    for k, var in enumerate(c.get("customVariables") or []):
        p = base + [("custom_variables", k)]
        name = var.get("conversionCustomVariable")
        m = CUSTOM_VAR_RE.match(name or "")
        if not m or not CUSTOMER_ID_RE.match(m.group(1)):
            return AdsError("requestError", "RESOURCE_NAME_MALFORMED",
                            "conversion_custom_variable must be customers/{id}/"
                            "conversionCustomVariables/{id}",
                            p + [("conversion_custom_variable", None)], name), facts
        if EMAIL_LIKE_RE.search(var.get("value", "")):
            return AdsError("conversionUploadError", "CUSTOM_VARIABLE_VALUE_CONTAINS_PII",
                            "custom variable value looks like it contains an e-mail address",
                            p + [("value", None)]), facts

    if "userIpAddress" in c:
        try:
            ipaddress.ip_address(c["userIpAddress"])
        except ValueError:
            return AdsError("fieldError", "INVALID_VALUE", "user_ip_address is not an IPv4 or IPv6 "
                            "address", base + [("user_ip_address", None)], c["userIpAddress"]), facts
    return None, facts


def validate_adjustment(i, a, ctx):
    """Row checks for one ConversionAdjustment that need no stored state [PROTO-CA]."""
    base = [("conversion_adjustments", i)]
    facts = {}
    fam = "conversionAdjustmentUploadError"
    action_id, err = check_action(a.get("conversionAction"), ctx, base, fam)
    if err:
        return err, facts
    facts["action_id"] = action_id

    kind = a.get("adjustmentType", "UNSPECIFIED")
    if kind == "UNSPECIFIED":
        return AdsError("fieldError", "REQUIRED", "adjustment_type is required",
                        base + [("adjustment_type", None)]), facts
    err = check_enum_value(kind, base + [("adjustment_type", None)], "adjustment_type")
    if err:
        return err, facts
    facts["type"] = kind

    when = None
    if kind != "ENHANCEMENT" or "adjustmentDateTime" in a:
        # [PROTO-CA] [EC]: the enhancement guide does not ask for adjustment_date_time.
        when, err = check_date(a.get("adjustmentDateTime"), ctx,
                               base + [("adjustment_date_time", None)], "adjustment_date_time")
        if err:
            return err, facts
    facts["when"] = when

    order = a.get("orderId")
    pair = a.get("gclidDateTimePair")
    if order == "":
        return AdsError("fieldError", "INVALID_VALUE", "order_id is set but empty",
                        base + [("order_id", None)]), facts
    if order is not None and EMAIL_LIKE_RE.search(order):
        return AdsError(fam, "ORDER_ID_CONTAINS_PII", "order_id looks like it contains an e-mail "
                        "address", base + [("order_id", None)]), facts
    if pair is not None:
        pp = base + [("gclid_date_time_pair", None)]
        if pair.get("gclid") is None:
            return AdsError("fieldError", "REQUIRED", "gclid_date_time_pair.gclid is required",
                            pp + [("gclid", None)]), facts
        if not GCLID_RE.match(pair["gclid"]):
            return AdsError("conversionUploadError", "UNPARSEABLE_GCLID",
                            "gclid_date_time_pair.gclid cannot be decoded", pp + [("gclid", None)],
                            pair["gclid"]), facts
        pwhen, err = check_date(pair.get("conversionDateTime"), ctx,
                                pp + [("conversion_date_time", None)],
                                "gclid_date_time_pair.conversion_date_time")
        if err:
            return err, facts
        facts["pair"] = (pair["gclid"], pwhen)

    uids = a.get("userIdentifiers") or []
    if kind == "ENHANCEMENT":
        if order is None:
            return AdsError("fieldError", "REQUIRED", "order_id is required for ENHANCEMENT",
                            base + [("order_id", None)]), facts
        if not uids:
            return AdsError("fieldError", "REQUIRED_NONEMPTY_LIST",
                            "an ENHANCEMENT needs user_identifiers",
                            base + [("user_identifiers", None)]), facts
        err = check_user_identifiers(uids, base, fam,
                                     ("hashedEmail", "hashedPhoneNumber", "addressInfo"))
        if err:
            return err, facts
        if "restatementValue" in a:
            return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                            "restatement_value is only for RESTATEMENT",
                            base + [("restatement_value", None)]), facts
    else:
        if order is not None and pair is not None:
            return AdsError(fam, "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET",
                            "set order_id or gclid_date_time_pair, not both",
                            base + [("gclid_date_time_pair", None)]), facts
        if order is None and pair is None:
            return AdsError("fieldError", "REQUIRED",
                            "order_id (or gclid_date_time_pair) must identify the conversion",
                            base + [("order_id", None)]), facts
        if uids:
            return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                            "user_identifiers are only accepted in ENHANCEMENT adjustments",
                            base + [("user_identifiers", None)]), facts
        if "userAgent" in a:
            return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                            "user_agent is only accepted in ENHANCEMENT adjustments",
                            base + [("user_agent", None)]), facts
        rv = a.get("restatementValue")
        if kind == "RETRACTION" and rv is not None:
            return AdsError("fieldError", "VALUE_MUST_BE_UNSET",
                            "restatement_value must not be set for a RETRACTION",
                            base + [("restatement_value", None)]), facts
        if kind == "RESTATEMENT":
            if rv is None:
                return AdsError("fieldError", "REQUIRED",
                                "restatement_value is required for a RESTATEMENT",
                                base + [("restatement_value", None)]), facts
            if "adjustedValue" not in rv:
                return AdsError("fieldError", "REQUIRED",
                                "restatement_value.adjusted_value is required for a RESTATEMENT",
                                base + [("restatement_value", None), ("adjusted_value", None)]), facts
            err = check_finite(rv["adjustedValue"], base + [("restatement_value", None),
                                                             ("adjusted_value", None)],
                               "restatement_value.adjusted_value")
            if err:
                return err, facts
            err = check_currency(rv.get("currencyCode"),
                                 base + [("restatement_value", None), ("currency_code", None)],
                                 "restatement_value.currency_code")
            if err:
                return err, facts
    facts["order_id"] = order
    return None, facts


# --------------------------------------------------------------------------- state

class State:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.tokens = {}
        self.reset(tokens=True)

    def reset(self, tokens=False):
        with self.lock:
            if tokens:
                self.tokens = {}          # access token -> {"expires": epoch, "expired": bool}
            self.conversions = []         # records for /_standin/conversions
            self.adjustments = []         # records for /_standin/adjustments
            self.requests = []            # records for /_standin/requests
            self.by_order = {}            # (customer, action id, order id) -> conversion state
            self.by_click = {}            # (customer, action id, kind, click id, epoch) -> state
            self.enhanced = set()         # (customer, action id, order id)
            self.fail_status = None
            self.fail_remaining = 0
            self.delay_ms = 0
            self.delay_remaining = 0


STATE = None


# --------------------------------------------------------------------------- upload logic

def handle_click_upload(body, ctx, rec, login_customer):
    """Returns (http status, response dict)."""
    rid = rec["requestId"]
    convs = body.get("conversions") or []
    rec["rowCount"] = len(convs)
    whole = whole_request_checks(body, convs, "conversions", "conversionUploadError",
                                 "TOO_MANY_CONVERSIONS_IN_REQUEST")
    if whole:
        return 400, rpc_error(400, "Request contains an invalid argument: " + whole.message,
                              [ads_failure(ctx.vtag, [whole], rid)])
    validate_only = body.get("validateOnly", False)

    errors = [None] * len(convs)
    facts = [None] * len(convs)
    for i, c in enumerate(convs):
        errors[i], facts[i] = validate_click(i, c, ctx)

    # In-request duplicates [ERR] DUPLICATE_ORDER_ID / DUPLICATE_CLICK_CONVERSION_IN_REQUEST.
    groups = {}
    for i, f in enumerate(facts):
        if errors[i]:
            continue
        if "order_id" in f:
            groups.setdefault(("order", f["action_id"], f["order_id"]), []).append(i)
        elif "click" in f:
            groups.setdefault(("click", f["action_id"]) + f["click"] + (f["when"].timestamp(),),
                              []).append(i)
    for key, members in groups.items():
        if len(members) > 1:
            for i in members:
                if key[0] == "order":
                    errors[i] = AdsError("conversionUploadError", "DUPLICATE_ORDER_ID",
                                         "order_id %s appears in %d conversions of this request"
                                         % (key[2], len(members)),
                                         [("conversions", i), ("order_id", None)], key[2])
                else:
                    errors[i] = AdsError("conversionUploadError", "DUPLICATE_CLICK_CONVERSION_IN_REQUEST",
                                         "several conversions of this request share click and "
                                         "conversion_date_time", [("conversions", i), (key[2], None)])

    results = []
    with STATE.lock:
        accepted = []
        for i, c in enumerate(convs):
            f = facts[i]
            if errors[i] is None:
                if "order_id" in f:
                    key = (ctx.customer, f["action_id"], f["order_id"])
                    if key in STATE.by_order:  # [PROTO-CU] one conversion per order id and action
                        errors[i] = AdsError("conversionUploadError", "ORDER_ID_ALREADY_IN_USE",
                                             "order_id %s was already recorded for this conversion "
                                             "action" % f["order_id"],
                                             [("conversions", i), ("order_id", None)], f["order_id"])
                elif "click" in f:
                    key = (ctx.customer, f["action_id"]) + f["click"] + (f["when"].timestamp(),)
                    if key in STATE.by_click:
                        errors[i] = AdsError("conversionUploadError", "CLICK_CONVERSION_ALREADY_EXISTS",
                                             "a conversion with this click and conversion_date_time "
                                             "already exists", [("conversions", i), (f["click"][0], None)])
            if errors[i] is None:
                accepted.append(i)
                result = {}
                for name in ("gclid", "gbraid", "wbraid"):
                    if c.get(name):
                        result[name] = c[name]
                result["conversionAction"] = c["conversionAction"]
                result["conversionDateTime"] = c["conversionDateTime"]
                if c.get("userIdentifiers"):
                    result["userIdentifiers"] = c["userIdentifiers"]
                results.append(result)
            else:
                results.append({})
        job_id = body["jobId"] if "jobId" in body else secrets.randbelow(2 ** 63 - 2 ** 31) + 2 ** 31
        if not validate_only:
            raw_rows = rec.pop("_raw_rows")
            for i in accepted:
                c, f = convs[i], facts[i]
                conv_state = {"when": f["when"], "retracted": False, "adj_times": set(),
                              "latest_adj": None, "order_id": f.get("order_id")}
                if "order_id" in f:
                    STATE.by_order[(ctx.customer, f["action_id"], f["order_id"])] = conv_state
                elif "click" in f:
                    STATE.by_click[(ctx.customer, f["action_id"]) + f["click"]
                                   + (f["when"].timestamp(),)] = conv_state
                raw = raw_rows[i]
                STATE.conversions.append({
                    "customerId": ctx.customer, "version": ctx.vtag, "jobId": str(job_id),
                    "loginCustomerId": login_customer, "requestId": rid,
                    "receivedAt": now_text(), "index": i,
                    "conversionValueText": raw["conversionValue"].text
                    if isinstance(raw.get("conversionValue"), JNum) else None,
                    "conversion": raw})
    failed = [e for e in errors if e is not None]
    rec["failedRowCount"] = len(failed)
    response = {}
    if failed:
        response["partialFailureError"] = partial_failure_status(ctx.vtag, failed, rid)
        rec["errorMessage"] = response["partialFailureError"]["message"]
        rec["errorCodes"] = [e.code for e in failed]
    if not validate_only:  # [PROTO-CU] results are not returned when validate_only is true
        response["results"] = results
        response["jobId"] = str(job_id)
    return 200, response


def whole_request_checks(body, rows, field, family, too_many_code):
    if not rows:
        return AdsError("fieldError", "REQUIRED_NONEMPTY_LIST",
                        "%s must contain at least one element" % field, [(field, None)])
    if len(rows) > MAX_ROWS:
        return AdsError(family, too_many_code,
                        "%s holds %d elements; at most %d are allowed per request"
                        % (field, len(rows), MAX_ROWS), [(field, None)])
    if body.get("partialFailure") is not True:  # [PROTO-CU] [ERR] PARTIAL_FAILURE_MODE_REQUIRED
        return AdsError("partialFailureError", "PARTIAL_FAILURE_MODE_REQUIRED",
                        "partial_failure must be true for this method", [("partial_failure", None)])
    if "jobId" in body and not 0 <= body["jobId"] < 2 ** 31:  # [PROTO-CU] job_id
        return AdsError(family, "INVALID_JOB_ID", "job_id must be non-negative and below 2^31",
                        [("job_id", None)], str(body["jobId"]))
    return None


def handle_adjustment_upload(body, ctx, rec, login_customer):
    rid = rec["requestId"]
    adjs = body.get("conversionAdjustments") or []
    rec["rowCount"] = len(adjs)
    fam = "conversionAdjustmentUploadError"
    whole = whole_request_checks(body, adjs, "conversion_adjustments", fam,
                                 "TOO_MANY_ADJUSTMENTS_IN_REQUEST")
    if whole:
        return 400, rpc_error(400, "Request contains an invalid argument: " + whole.message,
                              [ads_failure(ctx.vtag, [whole], rid)])
    validate_only = body.get("validateOnly", False)
    errors = [None] * len(adjs)
    facts = [None] * len(adjs)
    for i, a in enumerate(adjs):
        errors[i], facts[i] = validate_adjustment(i, a, ctx)

    # In-request duplicates [ERR] DUPLICATE_ADJUSTMENT_IN_REQUEST / DUPLICATE_ENHANCEMENT_IN_REQUEST.
    groups = {}
    for i, f in enumerate(facts):
        if errors[i]:
            continue
        ident = ("order", f["order_id"]) if f["order_id"] is not None else \
            ("pair", f["pair"][0], f["pair"][1].timestamp())
        if f["type"] == "ENHANCEMENT":
            key = ("enh", f["action_id"], f["order_id"])
        else:
            key = ("adj", f["action_id"]) + ident + (f["when"].timestamp(),)
        groups.setdefault(key, []).append(i)
    for key, members in groups.items():
        if len(members) > 1:
            for i in members:
                if key[0] == "enh":
                    errors[i] = AdsError(fam, "DUPLICATE_ENHANCEMENT_IN_REQUEST",
                                         "several enhancements of this request share conversion "
                                         "action and order_id", [("conversion_adjustments", i),
                                                                 ("order_id", None)])
                else:
                    errors[i] = AdsError(fam, "DUPLICATE_ADJUSTMENT_IN_REQUEST",
                                         "several adjustments of this request share conversion and "
                                         "adjustment_date_time", [("conversion_adjustments", i),
                                                                  ("adjustment_date_time", None)])

    results = []
    with STATE.lock:
        overlay = {}
        enhanced = set(STATE.enhanced)

        def view(conv):
            key = id(conv)
            if key not in overlay:
                overlay[key] = (conv, {"retracted": conv["retracted"],
                                       "adj_times": set(conv["adj_times"]),
                                       "latest_adj": conv["latest_adj"]})
            return overlay[key][1]

        for i, a in enumerate(adjs):
            f = facts[i]
            base = [("conversion_adjustments", i)]
            if errors[i] is None and f["type"] == "ENHANCEMENT":
                key = (ctx.customer, f["action_id"], f["order_id"])
                if key in enhanced:
                    errors[i] = AdsError(fam, "CONVERSION_ALREADY_ENHANCED",
                                         "this order_id was already enhanced for the conversion "
                                         "action", base + [("order_id", None)], f["order_id"])
                else:
                    enhanced.add(key)
            elif errors[i] is None:
                if f["order_id"] is not None:
                    conv = STATE.by_order.get((ctx.customer, f["action_id"], f["order_id"]))
                    where = base + [("order_id", None)]
                else:
                    gclid, pwhen = f["pair"]
                    conv = STATE.by_click.get((ctx.customer, f["action_id"], "gclid", gclid,
                                               pwhen.timestamp()))
                    where = base + [("gclid_date_time_pair", None)]
                if conv is None:
                    # [ERR] CONVERSION_NOT_FOUND.  [BLOG-ADJ]: since Sept 2024 two adjustment
                    # error codes are no longer returned synchronously (the copy read did not
                    # list them); the stand-in keeps reporting a missing conversion at once.
                    errors[i] = AdsError(fam, "CONVERSION_NOT_FOUND",
                                         "no conversion with this identifier was uploaded for the "
                                         "conversion action", where, f["order_id"])
                else:
                    v = view(conv)
                    at = f["when"].timestamp()
                    if conv["when"] < ctx.now - dt.timedelta(days=ADJUSTMENT_WINDOW_DAYS):
                        errors[i] = AdsError(fam, "CONVERSION_EXPIRED",
                                             "the conversion is older than %d days"
                                             % ADJUSTMENT_WINDOW_DAYS, where)
                    elif f["when"] <= conv["when"]:  # [PROTO-CA] must be after the conversion
                        errors[i] = AdsError(fam, "ADJUSTMENT_PRECEDES_CONVERSION",
                                             "adjustment_date_time must be later than the "
                                             "conversion's date-time",
                                             base + [("adjustment_date_time", None)],
                                             a["adjustmentDateTime"])
                    elif v["retracted"]:
                        errors[i] = AdsError(fam, "CONVERSION_ALREADY_RETRACTED",
                                             "the conversion was already retracted", where)
                    elif at in v["adj_times"]:
                        errors[i] = AdsError(fam, "RESTATEMENT_ALREADY_EXISTS",
                                             "an adjustment with this adjustment_date_time was "
                                             "already recorded for the conversion",
                                             base + [("adjustment_date_time", None)],
                                             a["adjustmentDateTime"])
                    elif v["latest_adj"] is not None and v["latest_adj"] > at:
                        errors[i] = AdsError(fam, "MORE_RECENT_RESTATEMENT_FOUND",
                                             "a later adjustment_date_time was already recorded "
                                             "for the conversion",
                                             base + [("adjustment_date_time", None)],
                                             a["adjustmentDateTime"])
                    else:
                        v["adj_times"].add(at)
                        v["latest_adj"] = at
                        if f["type"] == "RETRACTION":
                            v["retracted"] = True
            if errors[i] is None:
                result = {}
                if "gclidDateTimePair" in a:
                    result["gclidDateTimePair"] = a["gclidDateTimePair"]
                if a.get("orderId"):
                    result["orderId"] = a["orderId"]
                result["conversionAction"] = a["conversionAction"]
                if "adjustmentDateTime" in a:
                    result["adjustmentDateTime"] = a["adjustmentDateTime"]
                result["adjustmentType"] = a["adjustmentType"]
                results.append(result)
            else:
                results.append({})
        job_id = body["jobId"] if "jobId" in body else secrets.randbelow(2 ** 63 - 2 ** 31) + 2 ** 31
        if not validate_only:
            for conv, v in overlay.values():
                conv.update(v)
            STATE.enhanced = enhanced
            raw_rows = rec.pop("_raw_rows")
            for i, a in enumerate(adjs):
                if errors[i] is not None:
                    continue
                raw = raw_rows[i]
                rv = raw.get("restatementValue") or {}
                STATE.adjustments.append({
                    "customerId": ctx.customer, "version": ctx.vtag, "jobId": str(job_id),
                    "loginCustomerId": login_customer, "requestId": rid,
                    "receivedAt": now_text(), "index": i,
                    "adjustedValueText": rv["adjustedValue"].text
                    if isinstance(rv, dict) and isinstance(rv.get("adjustedValue"), JNum) else None,
                    "adjustment": raw})
    failed = [e for e in errors if e is not None]
    rec["failedRowCount"] = len(failed)
    response = {}
    if failed:
        response["partialFailureError"] = partial_failure_status(ctx.vtag, failed, rid)
        rec["errorMessage"] = response["partialFailureError"]["message"]
        rec["errorCodes"] = [e.code for e in failed]
    if not validate_only:
        response["results"] = results
        response["jobId"] = str(job_id)
    return 200, response


def now_text():
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------- HTTP

UPLOAD_RE = re.compile(r"^/(v\d+)/customers/([^/:]+):(uploadClickConversions|uploadConversionAdjustments)$")

INJECTED = {  # [APIERR] status -> (message, ErrorCode family, code)
    500: ("Internal error encountered.", "internalError", "INTERNAL_ERROR"),
    503: ("The service is currently unavailable.", "internalError", "TRANSIENT_ERROR"),
    504: ("The request deadline was exceeded.", "internalError", "DEADLINE_EXCEEDED"),
    429: ("Too many requests; retry later.", "quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED"),
    400: ("Request contains an invalid argument.", "requestError", "UNKNOWN"),
    401: ("Request had invalid authentication credentials.", "authenticationError",
          "AUTHENTICATION_ERROR"),
    403: ("The caller does not have permission.", "authorizationError", "AUTHORIZATION_ERROR"),
    404: ("Requested entity was not found.", "requestError", "RESOURCE_NOT_FOUND"),
    409: ("The operation was aborted.", "internalError", "TRANSIENT_ERROR"),
    499: ("The operation was cancelled.", "internalError", "TRANSIENT_ERROR"),
    501: ("Operation is not implemented.", "internalError", "INTERNAL_ERROR"),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "google-ads-standin/1"

    def log_message(self, fmt, *args):  # replaced by one line per request in finish_request
        pass

    # ---- plumbing
    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if te == "chunked":
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537).strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status, payload, extra_headers=None, raw=False):
        data = (payload if raw else dump_json(payload)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self._status = status

    def _log(self, status, note=""):
        sys.stderr.write("%s %s %s %s -> %d%s\n" % (
            now_text(), self.client_address[0], self.command, self.path, status,
            (" " + note) if note else ""))
        sys.stderr.flush()

    def _dispatch(self):
        self._status = 0
        note = ""
        try:
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/_standin/"):
                note = self._control(path)
            elif path in ("/token", "/oauth2/v3/token", "/oauth2/v4/token"):
                note = self._token()
            else:
                note = self._upload(path)
        except Exception as exc:  # pragma: no cover - keep serving
            note = "stand-in failure: %r" % exc
            if not self._status:
                self._send(500, {"error": {"code": 500, "message": "stand-in failure: %r" % exc,
                                           "status": "INTERNAL"}})
        self._log(self._status, note)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    # ---- control endpoints
    def _control(self, path):
        body = self._read_body()
        name = path[len("/_standin/"):]
        if self.command == "GET" and name in ("conversions", "adjustments", "requests"):
            with STATE.lock:
                items = list(getattr(STATE, name))
            self._send(200, {name: items})
            return "%d %s" % (len(items), name)
        if self.command != "POST" or name not in ("fail", "expire-tokens", "reset"):
            self._send(404, {"error": "unknown control endpoint %s %s" % (self.command, path)})
            return ""
        try:
            args = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            self._send(400, {"error": "bad control body: %s" % exc})
            return ""
        if name == "expire-tokens":
            with STATE.lock:
                for token in STATE.tokens.values():
                    token["expired"] = True
                count = len(STATE.tokens)
            self._send(200, {"expired": count})
            return "expired %d tokens" % count
        if name == "reset":
            STATE.reset(tokens=bool(args.get("tokens")))
            self._send(200, {"reset": True, "tokens": bool(args.get("tokens"))})
            return ""
        # fail
        status, count, delay = args.get("status"), args.get("count", 1), args.get("delay_ms", 0)
        unknown = set(args) - {"status", "count", "delay_ms"}
        problem = None
        if unknown:
            problem = "unknown keys %s" % sorted(unknown)
        elif status is not None and status not in INJECTED:
            problem = "status must be one of %s" % sorted(INJECTED)
        elif not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problem = "count must be a non-negative integer"
        elif not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            problem = "delay_ms must be a non-negative integer"
        elif status is None and not delay and count:
            problem = "give status and/or delay_ms"
        if problem:
            self._send(400, {"error": problem})
            return problem
        with STATE.lock:
            STATE.fail_status = status
            STATE.fail_remaining = count if status is not None else 0
            STATE.delay_ms = delay
            STATE.delay_remaining = count if delay else 0
        self._send(200, {"status": status, "count": count, "delay_ms": delay})
        return "armed status=%s count=%s delay_ms=%s" % (status, count, delay)

    # ---- OAuth 2.0 token endpoint [OAUTH] [AUTH]
    def _token(self):
        rec = {"time": now_text(), "method": self.command, "path": self.path, "endpoint": "token"}
        body = self._read_body()

        def answer(status, payload, note):
            headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
            if status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="oauth2"'
            self._send(status, payload, headers)
            rec["status"] = status
            rec["errorMessage"] = None if status == 200 else "%s: %s" % (
                payload.get("error"), payload.get("error_description"))
            with STATE.lock:
                STATE.requests.append(rec)
            return note

        if self.command != "POST":
            return answer(405, {"error": "invalid_request",
                                "error_description": "the token endpoint accepts POST only"}, "")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return answer(400, {"error": "invalid_request", "error_description":
                                "the body must be application/x-www-form-urlencoded"}, "bad type")
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            return answer(400, {"error": "invalid_request",
                                "error_description": "the form body cannot be parsed"}, "bad form")
        form = {}
        for key, value in pairs:
            if key in form:  # RFC 6749 3.2: parameters must not repeat
                return answer(400, {"error": "invalid_request", "error_description":
                                    "parameter %s is repeated" % key}, "repeated")
            form[key] = value
        cfg = STATE.cfg
        rec["grantType"] = form.get("grant_type")
        if "grant_type" not in form:
            return answer(400, {"error": "invalid_request",
                                "error_description": "required parameter grant_type is missing"}, "")
        if form["grant_type"] != "refresh_token":
            return answer(400, {"error": "unsupported_grant_type", "error_description":
                                "grant_type %s is not supported here" % form["grant_type"]}, "")
        if not form.get("client_id"):
            return answer(400, {"error": "invalid_request",
                                "error_description": "required parameter client_id is missing"}, "")
        if form["client_id"] != cfg.client_id:
            return answer(401, {"error": "invalid_client",
                                "error_description": "no OAuth client has this client_id"}, "")
        if form.get("client_secret") != cfg.client_secret:
            return answer(401, {"error": "invalid_client",
                                "error_description": "client authentication failed"}, "")
        if not form.get("refresh_token"):
            return answer(400, {"error": "invalid_request",
                                "error_description": "required parameter refresh_token is missing"}, "")
        if form["refresh_token"] != cfg.refresh_token:
            return answer(400, {"error": "invalid_grant",
                                "error_description": "the refresh token is expired, revoked or "
                                "unknown"}, "")
        extra = set(form) - {"grant_type", "client_id", "client_secret", "refresh_token", "scope"}
        if extra:
            return answer(400, {"error": "invalid_request", "error_description":
                                "unexpected parameters %s" % sorted(extra)}, "")
        if "scope" in form and set(form["scope"].split()) - {ADWORDS_SCOPE}:
            return answer(400, {"error": "invalid_scope", "error_description":
                                "only %s can be granted" % ADWORDS_SCOPE}, "")
        token = "ya29.standin-" + secrets.token_urlsafe(32)
        with STATE.lock:
            STATE.tokens[token] = {"expires": time.time() + cfg.token_lifetime, "expired": False}
        return answer(200, {"access_token": token, "expires_in": cfg.token_lifetime,
                            "scope": ADWORDS_SCOPE, "token_type": "Bearer"}, "issued")

    # ---- Google Ads REST uploads
    def _upload(self, path):
        rid = new_request_id()
        h = self.headers
        rec = {"time": now_text(), "method": self.command, "path": self.path, "endpoint": None,
               "version": None, "customerId": None, "requestId": rid,
               "authorizationPresent": h.get("Authorization") is not None,
               "developerTokenPresent": h.get("developer-token") is not None,
               "developerTokenMatches": h.get("developer-token") == STATE.cfg.developer_token,
               "loginCustomerIdPresent": h.get("login-customer-id") is not None,
               "loginCustomerId": h.get("login-customer-id"),
               "linkedCustomerId": h.get("linked-customer-id"),
               "contentType": h.get("Content-Type"),
               "status": None, "errorMessage": None, "errorCodes": [],
               "injected": False, "delayedMs": 0, "validateOnly": None,
               "rowCount": None, "failedRowCount": None}
        try:
            body = self._read_body()
        except ValueError as exc:
            body = None
            read_problem = str(exc)
        else:
            read_problem = None
        status, payload = self._upload_inner(path, body, read_problem, rec)
        extra = {"request-id": rid}  # [AUTH] response header
        if status == 401:
            extra["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
        rec["status"] = status
        if status != 200 and rec["errorMessage"] is None:
            rec["errorMessage"] = payload.get("error", {}).get("message") if isinstance(
                payload.get("error"), dict) else None
        rec.pop("_raw_rows", None)
        with STATE.lock:
            STATE.requests.append(rec)
        if rec["delayedMs"]:
            time.sleep(rec["delayedMs"] / 1000.0)
        self._send(status, payload, extra)
        return rec["errorMessage"] or ""

    def _upload_inner(self, path, body, read_problem, rec):
        rid = rec["requestId"]
        m = UPLOAD_RE.match(path)
        if not m or self.command != "POST":
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message":
                                   "%s %s is not a method of this stand-in (POST /vNN/customers/"
                                   "{customerId}:uploadClickConversions or "
                                   ":uploadConversionAdjustments)" % (self.command, path)}}
        vtag, customer, method = m.groups()
        rec.update(endpoint=method, version=vtag, customerId=customer)
        vnum = int(vtag[1:])

        with STATE.lock:  # injected faults and delays (control endpoint /_standin/fail)
            if STATE.delay_remaining > 0:
                STATE.delay_remaining -= 1
                rec["delayedMs"] = STATE.delay_ms
            if STATE.fail_remaining > 0:
                STATE.fail_remaining -= 1
                status = STATE.fail_status
                rec["injected"] = True
                message, family, code = INJECTED[status]
                rec["errorCodes"] = [code]
                err = AdsError(family, code, message)
                return status, rpc_error(status, message, [ads_failure(
                    vtag if MIN_VERSION <= vnum <= MAX_VERSION else "v%d" % MAX_VERSION, [err], rid)])

        if vnum < MIN_VERSION:
            return self._fail(rec, 400, "v%d" % MIN_VERSION, "requestError", "UNSUPPORTED_VERSION",
                              "API version %s is not served (v%d..v%d)" % (vtag, MIN_VERSION, MAX_VERSION))
        if vnum > MAX_VERSION:
            return 404, {"error": {"code": 404, "status": "NOT_FOUND", "message":
                                   "API version %s is not modelled by this stand-in" % vtag}}

        # Authorization: Bearer <access token> [AUTH] [OAUTH]
        auth = self.headers.get("Authorization")
        if auth is None:
            return self._fail(rec, 401, vtag, "authenticationError", "AUTHENTICATION_ERROR",
                              "The request carries no OAuth 2.0 access token: the Authorization "
                              "header (Bearer) is missing.")
        parts = auth.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].strip():
            return self._fail(rec, 401, vtag, "authenticationError", "OAUTH_TOKEN_HEADER_INVALID",
                              "The Authorization header must be 'Bearer <access token>'.")
        with STATE.lock:
            token = STATE.tokens.get(parts[1].strip())
        if token is None:
            return self._fail(rec, 401, vtag, "authenticationError", "OAUTH_TOKEN_INVALID",
                              "The OAuth 2.0 access token in the Authorization header is not valid.")
        if token["expired"] or token["expires"] <= time.time():
            return self._fail(rec, 401, vtag, "authenticationError", "OAUTH_TOKEN_EXPIRED",
                              "The OAuth 2.0 access token in the Authorization header has expired.")

        # developer-token [AUTH] [ERR]
        dev = self.headers.get("developer-token")
        if dev is None:
            return self._fail(rec, 400, vtag, "requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING",
                              "The developer-token header is missing.")
        if dev != STATE.cfg.developer_token:
            code = "DEVELOPER_TOKEN_INVALID" if vnum >= 19 else "AUTHENTICATION_ERROR"
            return self._fail(rec, 401, vtag, "authenticationError", code,
                              "The developer-token header does not hold a valid developer token.")

        # login-customer-id / linked-customer-id: digits only [AUTH] [LCID]
        for header, code in (("login-customer-id", "INVALID_LOGIN_CUSTOMER_ID"),
                             ("linked-customer-id", "INVALID_LINKED_CUSTOMER_ID")):
            value = self.headers.get(header)
            if value is not None and not CUSTOMER_ID_RE.match(value):
                return self._fail(rec, 400, vtag, "headerError", code,
                                  "The %s header must be a 10-digit customer id without "
                                  "hyphens; got %r." % (header, value))

        if not CUSTOMER_ID_RE.match(customer):  # [COMMON] CLIENT_CUSTOMER_ID_INVALID
            return self._fail(rec, 401, vtag, "authenticationError", "CLIENT_CUSTOMER_ID_INVALID",
                              "The customer id in the path must be 10 digits without hyphens; "
                              "got %r." % customer)

        # Body: JSON, proto3 JSON mapping of the request message.
        if read_problem:
            return self._bad_request(rec, "", "The request body could not be read: %s" % read_problem)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":  # [STANDIN] (the REST guide sends application/json)
            return self._bad_request(rec, "", "Content-Type must be application/json; got %r."
                                     % self.headers.get("Content-Type"))
        try:
            raw = parse_json(body.decode("utf-8"))
        except UnicodeDecodeError:
            return self._bad_request(rec, "", "Invalid JSON payload received. The body is not UTF-8.")
        except JsonSyntax as exc:
            return self._bad_request(rec, "", str(exc))
        except ValueError as exc:
            return self._bad_request(rec, "", "Invalid JSON payload received. %s" % exc)
        schema = M_UCC_REQUEST if method == "uploadClickConversions" else M_UCA_REQUEST
        try:
            req = check_payload(raw, schema, "", vnum, vtag)
        except PayloadError as exc:
            return self._bad_request(rec, exc.field, exc.description)
        rows_key = "conversions" if method == "uploadClickConversions" else "conversionAdjustments"
        rec["_raw_rows"] = [r for r in (raw.get(rows_key) or []) if r is not None]
        rec["validateOnly"] = bool(req.get("validateOnly"))
        ctx = RowContext(customer, vtag, vnum, dt.datetime.now(dt.timezone.utc),
                         STATE.cfg.conversion_actions)
        login = self.headers.get("login-customer-id")
        if method == "uploadClickConversions":
            status, payload = handle_click_upload(req, ctx, rec, login)
        else:
            status, payload = handle_adjustment_upload(req, ctx, rec, login)
        if status != 200:
            details = payload["error"]["details"][0]["errors"]
            rec["errorCodes"] = [list(e["errorCode"].values())[0] for e in details]
            rec["errorMessage"] = payload["error"]["message"]
        return status, payload

    def _fail(self, rec, http, vtag, family, code, message, path=()):
        rec["errorCodes"] = [code]
        rec["errorMessage"] = message
        err = AdsError(family, code, message, path)
        return http, rpc_error(http, message, [ads_failure(vtag, [err], rec["requestId"])])

    def _bad_request(self, rec, field, description):
        # Malformed JSON: google.rpc.BadRequest detail, as Google's JSON transcoding answers.
        rec["errorCodes"] = ["BAD_REQUEST"]
        rec["errorMessage"] = description
        return 400, rpc_error(400, description, [{
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}]}])


# --------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description="Strict local stand-in for Google Ads API "
                                     "conversion uploads (REST) and the OAuth 2.0 token endpoint.")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1; 0 picks one")
    parser.add_argument("--developer-token", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--refresh-token", required=True)
    parser.add_argument("--conversion-action", action="append", default=[], metavar="ID",
                        help="a known conversion action id (repeatable); without any, every id "
                        "is accepted")
    parser.add_argument("--token-lifetime", type=int, default=3599,
                        help="expires_in of issued access tokens, seconds (default 3599)")
    cfg = parser.parse_args(argv)
    for action in cfg.conversion_action:
        if not action.isdigit():
            parser.error("--conversion-action takes a numeric id, got %r" % action)
    cfg.conversion_actions = set(cfg.conversion_action) if cfg.conversion_action else None
    if cfg.token_lifetime <= 0:
        parser.error("--token-lifetime must be positive")

    global STATE
    STATE = State(cfg)
    server = ThreadingHTTPServer(("127.0.0.1", cfg.port), Handler)
    server.daemon_threads = True
    return standin_server.serve(server)


if __name__ == "__main__":
    sys.exit(main())
