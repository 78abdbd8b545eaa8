import Logging
import PostgresNIO

/// A read-through cache of site settings for the stream processors, refreshed at most every
/// `maximumAge` so that changed settings apply within seconds without a query per event.
public actor SiteSettingsCache {
    private let client: PostgresClient
    private let logger: Logger
    private let maximumAge: Duration
    private var sites: [String: Site] = [:]
    private var loadedAt: ContinuousClock.Instant?

    public init(client: PostgresClient, logger: Logger, maximumAge: Duration = .seconds(30)) {
        self.client = client
        self.logger = logger
        self.maximumAge = maximumAge
    }

    /// The settings of these sites; sites not (yet) known are absent.
    public func settings(for ids: Set<String>) async throws -> [String: Site] {
        let age = loadedAt.map { ContinuousClock.now - $0 }
        // Reload when stale, or early (at most once a second) when a site is not known yet.
        let stale = age.map { $0 > maximumAge } ?? true
        let missing = !ids.isSubset(of: sites.keys) && (age.map { $0 > .seconds(1) } ?? true)
        if stale || missing {
            let all = try await SiteStore(client: client, logger: logger).list()
            sites = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
            loadedAt = .now
        }
        return sites.filter { ids.contains($0.key) }
    }
}
