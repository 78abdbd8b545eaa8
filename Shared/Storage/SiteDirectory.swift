import Logging
import PostgresNIO

/// Keys and sites as the HTTP services need them on every request: cached for `maximumAge`
/// (so a revoked key stops working within that time) and loaded from `control` on a miss.
public actor SiteDirectory {
    private let store: SiteStore
    private let maximumAge: Duration
    private var keys: [String: (value: (site: String, kind: KeyKind)?, at: ContinuousClock.Instant)] = [:]
    private var sites: [String: (value: Site?, at: ContinuousClock.Instant)] = [:]
    private let integrations: IntegrationStore
    private let secretBox: SecretBox?
    private var secrets: [String: (value: IntegrationSecrets?, at: ContinuousClock.Instant)] = [:]
    private let destinations: DestinationStore
    private var platforms: [String: (value: Set<AdPlatform>, at: ContinuousClock.Instant)] = [:]

    /// Without a `secretBox` (no `TRIBUTARY_SECRET_KEY`) no site has a usable integration.
    public init(client: PostgresClient, logger: Logger, maximumAge: Duration = .seconds(10), secretBox: SecretBox? = nil) {
        store = SiteStore(client: client, logger: logger)
        integrations = IntegrationStore(client: client, logger: logger)
        destinations = DestinationStore(client: client, logger: logger)
        self.secretBox = secretBox
        self.maximumAge = maximumAge
    }

    /// The opened webhook secrets of a site's processor integration; nil when it has none.
    public func integration(site: String, processor: Processor) async throws -> IntegrationSecrets? {
        guard let secretBox else { return nil }
        let key = processor.rawValue + "/" + site
        if let cached = secrets[key], ContinuousClock.now - cached.at < maximumAge { return cached.value }
        let value = try await integrations.secrets(site: site, processor: processor, box: secretBox)
        if secrets.count > 10_000 { secrets.removeAll() }
        secrets[key] = (value, .now)
        return value
    }

    /// The site and kind of a valid key; nil for an unknown or revoked key.
    public func resolve(key: String) async throws -> (site: String, kind: KeyKind)? {
        // Keyed by the key itself: a hit costs no hashing. (Only this process's memory holds it.)
        if let cached = keys[key], ContinuousClock.now - cached.at < maximumAge { return cached.value }
        let value = try await store.resolve(key: key)
        if keys.count > 10_000 { keys.removeAll() }
        keys[key] = (value, .now)
        return value
    }

    /// The ad platforms a site forwards its conversions to (enabled destinations).
    public func forwardingPlatforms(site: String) async throws -> Set<AdPlatform> {
        if let cached = platforms[site], ContinuousClock.now - cached.at < maximumAge { return cached.value }
        let value = try await destinations.enabledPlatforms(site: site)
        if platforms.count > 10_000 { platforms.removeAll() }
        platforms[site] = (value, .now)
        return value
    }

    public func site(_ id: String) async throws -> Site? {
        if let cached = sites[id], ContinuousClock.now - cached.at < maximumAge { return cached.value }
        let value = try await store.site(id: id)
        if sites.count > 10_000 { sites.removeAll() }
        sites[id] = (value, .now)
        return value
    }
}
