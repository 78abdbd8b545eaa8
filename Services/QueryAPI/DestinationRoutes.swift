import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import PostgresNIO
import Storage

/// `PUT|GET|DELETE /v1/admin/sites/{site}/destinations/meta|google-ads`: the ad platforms a
/// site forwards its counted orders to. Options are shown; credentials are write-only: sealed
/// at rest (`SecretBox`), never returned, never logged — `GET` names which are set.
/// `GET /v1/sites/{site}/forwarding`: what was forwarded, from `forwarding.deliveries`.
extension QueryAPI {
    func addDestinationRoutes(to router: Router<some RequestContext>) {
        let path = "/v1/admin/sites/:site/destinations/:platform"
        router.put(RouterPath(path)) { request, context in
            try await handle(request) { try await self.putDestination(request, context: context) }
        }
        router.get(RouterPath(path)) { request, context in
            try await handle(request) {
                let (site, platform) = try await self.destinationTarget(request, context: context)
                guard let destination = try await DestinationStore(client: self.postgres, logger: self.logger).destination(site: site, platform: platform) else {
                    throw APIError(.notFound, .notFound, "site '\(site)' has no \(platform.pathName) destination")
                }
                return JSONResponse.ok(Self.destinationJSON(destination))
            }
        }
        router.delete(RouterPath(path)) { request, context in
            try await handle(request) {
                let (site, platform) = try await self.destinationTarget(request, context: context)
                guard try await DestinationStore(client: self.postgres, logger: self.logger).delete(site: site, platform: platform) else {
                    throw APIError(.notFound, .notFound, "site '\(site)' has no \(platform.pathName) destination")
                }
                self.logger.info("removed the \(platform.pathName) destination of site \(site)")
                return Response(status: .noContent)
            }
        }
        router.get("/v1/sites/:site/forwarding") { request, context in
            try await handle(request) { try await self.forwardingReport(request, context: context) }
        }
    }

    /// The site and platform of a destination route, for the site's owner key or the admin token.
    func destinationTarget(_ request: Request, context: some RequestContext) async throws -> (String, AdPlatform) {
        let site = try await authorizeOwner(request, site: try context.parameters.require("site")).id
        let name = try context.parameters.require("platform")
        guard let platform = AdPlatform(pathName: name) else {
            throw APIError(.notFound, .notFound, "no destination '\(name)'; there are \(AdPlatform.allCases.map(\.pathName).joined(separator: ", "))")
        }
        return (site, platform)
    }

    /// The members of a destination body besides the platform's options and credentials.
    static let destinationFlags = ["enabled", "test_mode", "require_consent", "settle_seconds"]
    /// Longest credential accepted, in bytes of UTF-8 (access and refresh tokens are a few hundred).
    static let maximumCredentialBytes = 4096

    /// `PUT …/destinations/{platform}` → 201 created or 200 updated, with the destination.
    /// The first PUT needs the required options and every credential; a later one changes
    /// what it carries and keeps the rest: omitted options and flags stay as stored (`null`
    /// removes an optional option), omitted credentials stay sealed as they are, and given
    /// credentials replace the stored ones all together.
    func putDestination(_ request: Request, context: some RequestContext) async throws -> Response {
        let (site, platform) = try await destinationTarget(request, context: context)
        let document = try await Self.body(request)
        guard let fields = document.objectValue else { throw APIError.invalid(.invalidJSON, "send a JSON object") }
        let credentialNames = platform.credentials
        let known = platform.options.map(\.name) + credentialNames + Self.destinationFlags
        // Refused rather than dropped: a misspelt credential would otherwise leave the old one in use.
        let unknown = fields.keys.filter { !known.contains($0) }.sorted()
        if let first = unknown.first {
            throw APIError.invalid(.invalidParameter, "unknown field\(unknown.count == 1 ? "" : "s") \(unknown.map { "'\($0)'" }.joined(separator: ", ")); "
                                   + "the \(platform.pathName) destination takes \(known.joined(separator: ", "))", field: first)
        }

        // Options: a string matching its pattern, or null to remove an optional one.
        var givenOptions: [String: String?] = [:]
        for option in platform.options {
            guard let value = fields[option.name] else { continue }
            if value == .null, !option.required {
                givenOptions[option.name] = .some(nil)
                continue
            }
            guard let text = value.stringValue, Self.matches(text, pattern: option.pattern) else {
                throw APIError.invalid(.invalidParameter, "\(option.name) must be \(option.meaning): a string matching \(option.pattern)"
                                       + (option.required ? "" : ", or null to remove it"), field: option.name)
            }
            givenOptions[option.name] = text
        }

        var credentials: [String: String] = [:]
        for name in credentialNames {
            guard let value = fields[name] else { continue }
            guard let text = value.stringValue, !text.isEmpty, text.utf8.count <= Self.maximumCredentialBytes else {
                throw APIError.invalid(.invalidParameter, "\(name) must be a non-empty string of at most \(Self.maximumCredentialBytes) bytes", field: name)
            }
            credentials[name] = text
        }
        let missingCredentials = credentialNames.filter { credentials[$0] == nil }
        if !credentials.isEmpty, let first = missingCredentials.first {
            throw APIError.invalid(.missingField, "the \(platform.pathName) credentials (\(credentialNames.joined(separator: ", "))) are set all together; "
                                   + "missing: \(missingCredentials.joined(separator: ", "))", field: first)
        }

        func flag(_ name: String) throws(APIError) -> Bool? {
            guard let value = fields[name] else { return nil }
            guard let flag = value.boolValue else { throw APIError.invalid(.invalidParameter, "\(name) must be true or false", field: name) }
            return flag
        }
        let enabled = try flag("enabled"), testMode = try flag("test_mode"), requireConsent = try flag("require_consent")
        var settleSeconds: Int?
        if let value = fields["settle_seconds"] {
            guard case .number(let text) = value, let seconds = Int(text), (0...86_400).contains(seconds) else {
                throw APIError.invalid(.invalidParameter, "settle_seconds must be a whole number of seconds from 0 to 86400", field: "settle_seconds")
            }
            settleSeconds = seconds
        }

        guard let box = configuration.secretBox else {
            throw APIError(.serviceUnavailable, .unavailable,
                           "set \(SecretBox.environmentVariable) (at least \(SecretBox.minimumKeyLength) characters) to store destination credentials")
        }
        let store = DestinationStore(client: postgres, logger: logger)
        let current = try await store.destination(site: site, platform: platform)
        if current == nil, credentials.isEmpty {
            throw APIError.invalid(.missingField, "the first PUT sets up \(platform.pathName): \(credentialNames.joined(separator: ", ")) "
                                   + "\(credentialNames.count == 1 ? "is" : "are") required", field: credentialNames[0])
        }
        // Stored options of an older version that no longer exist are dropped.
        var settings = (current?.settings ?? [:]).filter { name, _ in platform.options.contains { $0.name == name } }
        for (name, value) in givenOptions { settings[name] = value }
        let missingOptions = platform.options.filter { $0.required && settings[$0.name] == nil }
        if let first = missingOptions.first {
            throw APIError.invalid(.missingField, missingOptions.map { "\($0.name) (\($0.meaning))" }.joined(separator: ", ")
                                   + " \(missingOptions.count == 1 ? "is" : "are") required", field: first.name)
        }
        let destination = Destination(site: site, platform: platform, settings: settings,
                                      enabled: enabled ?? current?.enabled ?? true,
                                      testMode: testMode ?? current?.testMode ?? false,
                                      requireConsent: requireConsent ?? current?.requireConsent ?? true,
                                      settleSeconds: settleSeconds ?? current?.settleSeconds ?? 300)
        let sealed = credentials.isEmpty ? nil : JSONValue.object(credentials.mapValues { .string($0) }).serialized
        let created: Bool
        do {
            created = try await store.put(destination, credentials: sealed, box: box)
        } catch let error as StorageError where error.code == .invalid {
            // Removed by another request since it was read: this PUT is a first one after all.
            throw APIError.invalid(.missingField, error.message, field: credentialNames[0])
        } catch let error as StorageError where error.code == .notFound {
            throw APIError(.notFound, .notFound, error.message)
        }
        logger.info("set the \(platform.pathName) destination of site \(site)")
        let stored = try await store.destination(site: site, platform: platform) ?? destination
        return JSONResponse.make(created ? .created : .ok, Self.destinationJSON(stored))
    }

    /// Whether all of `text` matches `pattern` (an `AdPlatform.options` pattern); a pattern
    /// that does not compile matches nothing.
    static func matches(_ text: String, pattern: String) -> Bool {
        guard let regex = try? Regex(pattern) else { return false }
        return (try? regex.wholeMatch(in: text)) != nil
    }

    /// A destination as the API shows it: its options and which credentials are set (all of
    /// the platform's: they are stored together), never a credential's value.
    static func destinationJSON(_ destination: Destination) -> JSONValue {
        .object([
            "site": .string(destination.site),
            "platform": .string(destination.platform.pathName),
            "settings": .object(destination.settings.mapValues { .string($0) }),
            "enabled": .bool(destination.enabled),
            "test_mode": .bool(destination.testMode),
            "require_consent": .bool(destination.requireConsent),
            "settle_seconds": .number(String(destination.settleSeconds)),
            "credentials_set": .array(destination.platform.credentials.map { .string($0) }),
            "updated_at": .string(Self.rfc3339(destination.updatedAt)),
        ])
    }

    static func rfc3339(_ date: Date) -> String {
        Timestamp.formatRFC3339(Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    static let deliveryStates = ["pending", "sent", "failed", "skipped"]

    /// `GET /v1/sites/{site}/forwarding?state=&platform=&order_id=&limit=`: the site's
    /// deliveries counted per platform and state (all of them, whatever the filters), and the
    /// latest `limit` (default 100, at most 500) that match the filters, newest change first.
    /// A parameter given twice counts once, its last value.
    func forwardingReport(_ request: Request, context: some RequestContext) async throws -> Response {
        let site = try await authorizeRead(request, site: try context.parameters.require("site")).id
        var parameters: [String: String] = [:]
        for (name, value) in Self.parameters(request) where ["state", "platform", "order_id", "limit"].contains(name) {
            try Self.refuseNUL(value, field: name)
            parameters[name] = value
        }
        var conditions: [SQLFragment] = ["site = \(site)"]
        if let state = parameters["state"] {
            guard Self.deliveryStates.contains(state) else {
                throw APIError.invalid(.invalidParameter, "state must be one of \(Self.deliveryStates.joined(separator: ", "))", field: "state")
            }
            conditions.append("state = \(state)")
        }
        if let name = parameters["platform"] {
            guard let platform = AdPlatform(pathName: name) else {
                throw APIError.invalid(.invalidParameter, "platform must be one of \(AdPlatform.allCases.map(\.pathName).joined(separator: ", "))", field: "platform")
            }
            conditions.append("platform = \(platform.rawValue)")
        }
        if let orderId = parameters["order_id"] {
            guard !orderId.isEmpty else { throw APIError.invalid(.invalidParameter, "order_id must not be empty", field: "order_id") }
            conditions.append("order_id = \(orderId)")
        }
        var limit = 100
        if let text = parameters["limit"] {
            guard let number = Int(text), (1...500).contains(number) else {
                throw APIError.invalid(.invalidParameter, "limit must be 1 to 500", field: "limit")
            }
            limit = number
        }

        // Deliveries name the platform by its stored name (google_ads); the API by its path name.
        func platformName(_ stored: String) -> String { AdPlatform(rawValue: stored)?.pathName ?? stored }
        var totals: [JSONValue] = []
        let counted: SQLFragment = """
            SELECT platform, state, count(*)::int8 FROM forwarding.deliveries WHERE site = \(site)
            GROUP BY platform, state ORDER BY platform, state
            """
        for try await (platform, state, deliveries) in try await postgres.query(counted.query, logger: logger).decode((String, String, Int64).self) {
            totals.append(.object(["platform": .string(platformName(platform)), "state": .string(state), "deliveries": .number(String(deliveries))]))
        }
        var deliveries: [JSONValue] = []
        let listed: SQLFragment = """
            SELECT platform, order_id, kind, value_minor, currency, state, reason, attempts, created_at, updated_at, sent_at
            FROM forwarding.deliveries WHERE \(conditions.joined(separator: " AND "))
            ORDER BY updated_at DESC, platform, order_id, kind, value_minor LIMIT \(limit)
            """
        for try await (platform, orderId, kind, valueMinor, currency, state, reason, attempts, createdAt, updatedAt, sentAt)
            in try await postgres.query(listed.query, logger: logger)
            .decode((String, String, String, Int64, String, String, String?, Int, Date, Date, Date?).self) {
            deliveries.append(.object([
                "platform": .string(platformName(platform)), "order_id": .string(orderId), "kind": .string(kind),
                "value_minor": .number(String(valueMinor)), "currency": .string(currency),
                "value": Currency(code: currency).map { .string(Money(currency: $0, amountMinor: valueMinor).decimalText) } ?? .null,
                "state": .string(state),
                "reason": reason.map { .string($0) } ?? .null, "attempts": .number(String(attempts)),
                "created_at": .string(Self.rfc3339(createdAt)), "updated_at": .string(Self.rfc3339(updatedAt)),
                "sent_at": sentAt.map { .string(Self.rfc3339($0)) } ?? .null,
            ]))
        }
        return JSONResponse.ok(.object(["site": .string(site), "totals": .array(totals), "deliveries": .array(deliveries)]))
    }
}
