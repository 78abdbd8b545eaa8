import Contracts
import Foundation
import Logging
import PostgresNIO

/// An ad platform a site can forward its counted orders to.
public enum AdPlatform: String, Sendable, CaseIterable {
    case meta
    case googleAds = "google_ads"

    /// Its name in the admin API's paths: `…/destinations/meta`, `…/destinations/google-ads`.
    public var pathName: String { self == .meta ? "meta" : "google-ads" }

    public init?(pathName: String) {
        guard let platform = Self.allCases.first(where: { $0.pathName == pathName }) else { return nil }
        self = platform
    }

    /// The options a site sets (stored in clear, shown by `GET`), each with its check, and
    /// the credentials (sealed, never shown). Required ones first.
    public var options: [(name: String, required: Bool, pattern: String, meaning: String)] {
        switch self {
        case .meta: [
            ("pixel_id", true, #"^[0-9]{1,20}$"#, "the dataset (pixel) id, digits"),
            ("api_version", false, #"^v[0-9]{1,2}\.[0-9]$"#, "Graph API version, e.g. v21.0 (default)"),
            ("test_event_code", false, #"^[A-Za-z0-9_-]{1,64}$"#, "sends events as test events (Events Manager → Test events)"),
            ("events", false, #"^(AddToCart|InitiateCheckout|ViewContent|Lead)(,(AddToCart|InitiateCheckout|ViewContent|Lead))*$"#,
             "Meta events sent besides purchases, comma-separated: AddToCart, InitiateCheckout, ViewContent, Lead"),
        ]
        case .googleAds: [
            ("customer_id", true, #"^[0-9]{10}$"#, "the Google Ads customer id, 10 digits without dashes"),
            ("conversion_action", true, #"^[0-9]{1,20}$"#, "the conversion action id, digits"),
            ("login_customer_id", false, #"^[0-9]{10}$"#, "the manager account's customer id, when access goes through one"),
            ("api_version", false, #"^v[0-9]{2}$"#, "Google Ads API version, e.g. v19 (default)"),
        ]
        }
    }

    public var credentials: [String] {
        switch self {
        case .meta: ["access_token"]
        case .googleAds: ["developer_token", "client_id", "client_secret", "refresh_token"]
        }
    }

    /// What the sealed credentials are bound to.
    func sealingContext(site: String) -> String { "destination/\(rawValue)/\(site)" }
}

/// A site's destination as the API shows it: its options, never its credentials.
public struct Destination: Sendable, Hashable {
    public var site: String
    public var platform: AdPlatform
    /// The platform's options (`AdPlatform.options`), as strings.
    public var settings: [String: String]
    public var enabled: Bool
    /// Meta: events carry the test event code; Google Ads: uploads are `validate_only`.
    public var testMode: Bool
    /// Forward only orders whose shopper gave ad consent. Default true.
    public var requireConsent: Bool
    /// How long after an order is counted it is first sent, so that a server copy can correct
    /// a browser copy first. Default 300.
    public var settleSeconds: Int
    public var updatedAt: Date

    public init(site: String, platform: AdPlatform, settings: [String: String], enabled: Bool = true, testMode: Bool = false,
                requireConsent: Bool = true, settleSeconds: Int = 300, updatedAt: Date = Date()) {
        self.site = site
        self.platform = platform
        self.settings = settings
        self.enabled = enabled
        self.testMode = testMode
        self.requireConsent = requireConsent
        self.settleSeconds = settleSeconds
        self.updatedAt = updatedAt
    }
}

/// Ad platform destinations and their sealed credentials in `control.destinations`.
public struct DestinationStore: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Creates or replaces the destination. `credentials` (JSON object text of the platform's
    /// credential fields) replace the sealed ones; nil keeps them, which only an update may do
    /// (`.invalid` for a first call without). `.notFound` for an unknown site.
    public func put(_ destination: Destination, credentials: String?, box: SecretBox) async throws -> Bool {
        let sealed = try credentials.map { Data(try box.seal($0, context: destination.platform.sealingContext(site: destination.site))) }
        let settings = JSONValue.object(destination.settings.mapValues { .string($0) }).serialized
        do {
            return try await client.withTransaction(logger: logger) { connection in
                let exists = try await connection.query("SELECT 1 FROM control.sites WHERE id = \(destination.site) FOR UPDATE", logger: logger)
                var found = false
                for try await _ in exists { found = true }
                guard found else { throw StorageError(code: .notFound, message: "site '\(destination.site)' does not exist") }
                let rows = try await connection.query("""
                    INSERT INTO control.destinations AS d (site, platform, settings, sealed, enabled, test_mode, require_consent, settle_seconds)
                    SELECT \(destination.site), \(destination.platform.rawValue), \(settings)::jsonb, s.sealed, \(destination.enabled),
                           \(destination.testMode), \(destination.requireConsent), \(destination.settleSeconds)
                    FROM (SELECT coalesce(\(sealed), (SELECT sealed FROM control.destinations
                                                     WHERE site = \(destination.site) AND platform = \(destination.platform.rawValue))) AS sealed) s
                    WHERE s.sealed IS NOT NULL
                    ON CONFLICT (site, platform) DO UPDATE SET settings = excluded.settings, sealed = excluded.sealed,
                        enabled = excluded.enabled, test_mode = excluded.test_mode, require_consent = excluded.require_consent,
                        settle_seconds = excluded.settle_seconds, updated_at = now()
                    RETURNING (xmax = 0)
                    """, logger: logger)
                for try await created in rows.decode(Bool.self) { return created }
                throw StorageError(code: .invalid, message: "\(destination.platform.credentials.joined(separator: ", ")) are required to set up \(destination.platform.pathName)")
            }
        } catch let error as PostgresTransactionError {
            throw (error.closureError as? StorageError) ?? error
        }
    }

    public func destination(site: String, platform: AdPlatform) async throws -> Destination? {
        try await destinations(where: "site = \(site) AND platform = \(platform.rawValue)").first
    }

    /// The enabled destinations of every site (for the Forwarder).
    public func enabled() async throws -> [Destination] {
        try await destinations(where: "enabled")
    }

    /// The platforms a site forwards to (for the Collector: what to keep of an event).
    public func enabledPlatforms(site: String) async throws -> Set<AdPlatform> {
        Set(try await destinations(where: "site = \(site) AND enabled").map(\.platform))
    }

    private func destinations(where condition: SQLFragment) async throws -> [Destination] {
        let statement: SQLFragment = """
            SELECT site, platform, settings::text, enabled, test_mode, require_consent, settle_seconds, updated_at
            FROM control.destinations WHERE \(condition) ORDER BY site, platform
            """
        var result: [Destination] = []
        for try await (site, platform, settings, enabled, testMode, consent, settle, updatedAt)
            in try await client.query(statement.query, logger: logger).decode((String, String, String, Bool, Bool, Bool, Int, Date).self) {
            guard let platform = AdPlatform(rawValue: platform) else { continue }
            let options = (try? JSONValue.parse(settings))?.objectValue?.compactMapValues(\.stringValue) ?? [:]
            result.append(Destination(site: site, platform: platform, settings: options, enabled: enabled, testMode: testMode,
                                      requireConsent: consent, settleSeconds: settle, updatedAt: updatedAt))
        }
        return result
    }

    /// Removes the destination; false when there was none. Deliveries already recorded stay.
    public func delete(site: String, platform: AdPlatform) async throws -> Bool {
        let rows = try await client.query("DELETE FROM control.destinations WHERE site = \(site) AND platform = \(platform.rawValue) RETURNING 1", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// The opened credentials (JSON object of the platform's credential fields).
    public func credentials(site: String, platform: AdPlatform, box: SecretBox) async throws -> [String: String]? {
        let rows = try await client.query("SELECT sealed FROM control.destinations WHERE site = \(site) AND platform = \(platform.rawValue)", logger: logger)
        for try await sealed in rows.decode(Data.self) {
            let text = try box.open(Array(sealed), context: platform.sealingContext(site: site))
            return (try JSONValue.parse(text)).objectValue?.compactMapValues(\.stringValue)
        }
        return nil
    }
}
