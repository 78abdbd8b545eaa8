import Contracts
import Crypto
import Foundation
import HTTPAPI

/// Checks that a webhook came from the processor, exactly as each one defines its signature:
/// an HMAC-SHA256 keyed with the shop's webhook secret over the raw request bytes (never over
/// re-encoded JSON, which would not be the bytes that were signed). Every comparison is
/// constant time (`HMAC.isValidAuthenticationCode`). A site may hold two secrets while it
/// rotates them; a signature made with either passes. Any failure is a 401.
public enum WebhookSignature {
    /// Stripe's `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`: the HMAC-SHA256 of
    /// `"<t>." + body`. Any `v1` may match any secret (Stripe sends one `v1` per active secret
    /// of the endpoint while it rolls one); `v0` and unknown schemes are ignored. `t` must lie
    /// within `tolerance` seconds of `now` either way, so a captured request cannot be replayed
    /// later.
    /// - Parameters:
    ///   - now: the receiving clock, Unix seconds.
    ///   - tolerance: seconds; default 300, Stripe's own libraries' default.
    static func verifyStripe(header: String?, body: some Collection<UInt8>, secrets: [String], now: Int64,
                             tolerance: Int64 = 300) throws(APIError) {
        guard let header, !header.isEmpty else { throw refused("the Stripe-Signature header is missing") }
        var timestamp: String?
        var signatures: [[UInt8]] = []
        for element in header.split(separator: ",") {
            guard let equals = element.firstIndex(of: "=") else { continue }
            let key = element[..<equals].trimmingCharacters(in: .whitespaces)
            let value = element[element.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if key == "t" {
                // Stripe sends one `t`; a header naming several is not one of its own.
                guard timestamp == nil else { throw refused("the Stripe-Signature header names more than one timestamp") }
                timestamp = value
            } else if key == "v1", let bytes = hexBytes(value) {
                signatures.append(bytes)
            }
        }
        guard let signedTimestamp = timestamp, let seconds = Int64(signedTimestamp) else {
            throw refused("the Stripe-Signature header has no timestamp")
        }
        guard !signatures.isEmpty else { throw refused("the Stripe-Signature header has no v1 signature") }
        let (difference, overflow) = now.subtractingReportingOverflow(seconds)
        guard !overflow, difference.magnitude <= tolerance.magnitude else {
            throw refused("the Stripe-Signature timestamp is more than \(tolerance) seconds from now")
        }
        // The timestamp exactly as sent, not re-printed: it is part of what was signed.
        let signedPayload = Array(signedTimestamp.utf8) + [UInt8(ascii: ".")] + Array(body)
        guard matches(signatures, payload: signedPayload, secrets: secrets) else {
            throw refused("no Stripe-Signature v1 signature matches this site's webhook secret")
        }
    }

    /// Shopify's `X-Shopify-Hmac-Sha256`: the base64 of the HMAC-SHA256 of the body.
    static func verifyShopify(header: String?, body: some Collection<UInt8>, secrets: [String]) throws(APIError) {
        guard let header = header?.trimmingCharacters(in: .whitespaces), !header.isEmpty else {
            throw refused("the X-Shopify-Hmac-Sha256 header is missing")
        }
        guard let signature = Data(base64Encoded: header) else { throw refused("the X-Shopify-Hmac-Sha256 header is not base64") }
        guard matches([Array(signature)], payload: Array(body), secrets: secrets) else {
            throw refused("the X-Shopify-Hmac-Sha256 signature does not match this site's webhook secret")
        }
    }

    /// The `Stripe-Signature` Stripe would send for this body at `timestamp` (Unix seconds),
    /// one `v1` per secret: for the tests and the simulator.
    public static func stripeHeader(timestamp: Int64, body: some Collection<UInt8>, secrets: [String]) -> String {
        let payload = Array("\(timestamp).".utf8) + Array(body)
        let signatures = secrets.map { secret in
            "v1=" + hexString(HMAC<SHA256>.authenticationCode(for: payload, using: SymmetricKey(data: Array(secret.utf8))))
        }
        return (["t=\(timestamp)"] + signatures).joined(separator: ",")
    }

    /// The `X-Shopify-Hmac-Sha256` Shopify would send for this body: for the tests and the simulator.
    public static func shopifyHeader(body: some Collection<UInt8>, secret: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array(body), using: SymmetricKey(data: Array(secret.utf8)))).base64EncodedString()
    }

    /// Whether any signature is the HMAC of the payload under any secret. Every pair is
    /// checked, so the time taken does not tell which secret or signature came close.
    static func matches(_ signatures: [[UInt8]], payload: [UInt8], secrets: [String]) -> Bool {
        var valid = false
        for secret in secrets where !secret.isEmpty {
            let key = SymmetricKey(data: Array(secret.utf8))
            for signature in signatures where HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: payload, using: key) {
                valid = true
            }
        }
        return valid
    }

    /// Bytes of a hexadecimal string (either case); nil for anything else.
    static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count.isMultiple(of: 2) else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func refused(_ message: String) -> APIError {
        APIError(.unauthorized, .unauthorized, message)
    }
}
