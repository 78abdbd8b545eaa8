import Synchronization

/// Per-site token buckets: each site may send `eventsPerSecond` events on average through this
/// Collector, in bursts of up to `burstSeconds` worth. A refused request learns when to retry.
final class RateLimiter: Sendable {
    struct Buckets {
        var eventsPerSecond: Double
        var capacity: Double
        var levels: [String: (tokens: Double, at: Double)] = [:]

        /// Takes `count` tokens of `site` at time `now` (seconds); nil when admitted, else the
        /// seconds until enough tokens will be there.
        mutating func admit(site: String, count: Int, now: Double) -> Double? {
            var bucket = levels[site] ?? (capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * eventsPerSecond)
            bucket.at = now
            let needed = Double(min(count, Int(capacity)))
            guard bucket.tokens >= needed else {
                levels[site] = bucket
                return (needed - bucket.tokens) / eventsPerSecond
            }
            bucket.tokens -= needed
            levels[site] = bucket
            return nil
        }
    }

    private let enabled: Bool
    private let buckets: Mutex<Buckets>

    /// `eventsPerSecond` 0 disables the limit.
    init(eventsPerSecond: Double, burstSeconds: Double = 2) {
        enabled = eventsPerSecond > 0
        buckets = Mutex(Buckets(eventsPerSecond: max(eventsPerSecond, 1), capacity: max(1, eventsPerSecond * burstSeconds)))
    }

    /// Seconds to wait (rounded up, at least 1) when `site` is over its rate, else nil.
    func retryAfter(site: String, events: Int) -> Int? {
        guard enabled else { return nil }
        let now = ContinuousClock.now.durationSinceStart
        return buckets.withLock { $0.admit(site: site, count: events, now: now) }.map { max(1, Int($0.rounded(.up))) }
    }
}

extension ContinuousClock.Instant {
    /// Seconds since an arbitrary fixed point, for rate arithmetic.
    var durationSinceStart: Double {
        let (seconds, attoseconds) = (self - ContinuousClock.Instant.reference).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static let reference = ContinuousClock.now
}
