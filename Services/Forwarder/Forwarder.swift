import AsyncHTTPClient
import Contracts
import Foundation
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Storage

public struct ForwarderConfiguration: Sendable {
    /// Meta's Graph API. Default `https://graph.facebook.com`.
    public var metaBaseURL = "https://graph.facebook.com"
    /// Google Ads API (REST). Default `https://googleads.googleapis.com`.
    public var googleAdsBaseURL = "https://googleads.googleapis.com"
    /// Google's OAuth token endpoint. Default `https://oauth2.googleapis.com/token`.
    public var googleTokenURL = "https://oauth2.googleapis.com/token"
    /// How long a platform may take to answer before the delivery is retried. Default 1.5 s.
    public var requestTimeout: Duration = .milliseconds(1_500)
    /// Attempts of a delivery that times out or meets a 5xx before it is recorded as failed. Default 8.
    public var maximumAttempts = 8
    /// How often to look for due work when there was none. Default 1 s.
    public var pollInterval: Duration = .seconds(1)

    public init() {}
}

/// Sends each counted order to the ad platforms its site configured, once per (destination,
/// order, kind), and records every outcome in `forwarding.deliveries`.
///
/// Two steps, each a Postgres transaction that locks the rows it works on with `SKIP LOCKED`,
/// so any number of Forwarders share the work and a killed one leaves nothing half-done:
/// 1. *Plan*: takes due `forwarding.pending_orders` (the Aggregator's outbox), reads each
///    order as counted and what was delivered for it, and records the delivery each enabled
///    destination needs (`ForwardingPlan`) — pending, or skipped with why.
/// 2. *Send*: takes due pending deliveries of one destination (up to its batch limit),
///    sends them in one request with the order's current worth, and records sent, failed
///    (the platform's message; 4xx are not retried) or a retry with backoff (timeouts, 5xx).
///    The rows stay locked until the outcome is recorded: a Forwarder killed mid-request
///    leaves them pending, and the resend carries the same event id (Meta) or order id
///    (Google), which the platform deduplicates.
/// The shopper's user agent and IP are deleted from the order's signals once its
/// conversions are settled, or after 7 days.
///
/// Metrics: `tributary_forwarder_deliveries_total{platform, outcome}` (sent, failed, skipped,
/// retried), `tributary_forwarder_pending` (deliveries waiting to be sent, retries included).
public struct ForwarderService: Service {
    let configuration: ForwarderConfiguration
    let postgres: PostgresClient
    let secretBox: SecretBox?
    let logger: Logger

    public init(configuration: ForwarderConfiguration, postgres: PostgresClient, secretBox: SecretBox?, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.secretBox = secretBox
        self.logger = logger
    }

    public func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let http = PlatformHTTP(client: client, timeout: .nanoseconds(Int64(configuration.requestTimeout.components.seconds) * 1_000_000_000
                                                                   + configuration.requestTimeout.components.attoseconds / 1_000_000_000))
        let worker = ForwardingWorker(
            postgres: postgres, secretBox: secretBox, logger: logger, maximumAttempts: configuration.maximumAttempts,
            meta: MetaConversions(http: http, baseURL: configuration.metaBaseURL),
            google: GoogleAds(http: http, baseURL: configuration.googleAdsBaseURL, tokenURL: configuration.googleTokenURL, tokens: GoogleTokens()))
        logger.info("forwarder started: Meta at \(configuration.metaBaseURL), Google Ads at \(configuration.googleAdsBaseURL)")
        await cancelWhenGracefulShutdown {
            var failing = false
            var lastSweep = ContinuousClock.now - .seconds(3600)
            while !Task.isCancelled {
                var busy = false
                do {
                    busy = try await worker.round()
                    if ContinuousClock.now - lastSweep > .seconds(60) {
                        try await worker.forgetShopperDetails()
                        lastSweep = .now
                    }
                    if failing { logger.info("forwarder works again") }
                    failing = false
                } catch {
                    if !failing { logger.warning("forwarder round failed (retried every \(configuration.pollInterval)): \(String(reflecting: error))") }
                    failing = true
                }
                if !busy { try? await Task.sleep(for: configuration.pollInterval) }
            }
        }
        try? await client.shutdown()
    }
}

/// The plan and send steps (`ForwarderService`), one round at a time (tests drive it directly).
struct ForwardingWorker: Sendable {
    let postgres: PostgresClient
    let secretBox: SecretBox?
    let logger: Logger
    let maximumAttempts: Int
    let meta: MetaConversions
    let google: GoogleAds
    /// Orders or events planned per transaction, deliveries sent per request (at most the
    /// platform's limit).
    var planBatch = 500
    var sendBatch = Int.max

    /// Plans due orders, then sends one batch per destination with due deliveries. Returns
    /// whether it found work (then the next round starts at once).
    func round(now: Date = Date()) async throws -> Bool {
        let planned = try await planDueOrders(now: now) + planDueEvents(now: now)
        var sent = 0
        for (site, platform) in try await destinationsWithDueDeliveries() {
            sent += try await sendDue(site: site, platform: platform)
        }
        let waiting = try await postgres.query("SELECT count(*)::int8 FROM forwarding.deliveries WHERE state = 'pending'", logger: logger)
        for try await count in waiting.decode(Int64.self) { Gauge(label: "tributary_forwarder_pending").record(count) }
        return planned > 0 || sent > 0
    }

    // MARK: plan

    func planDueOrders(now: Date) async throws -> Int {
        try await postgres.withTransaction(logger: logger) { connection in
            var keys: [(site: String, order: String)] = []
            let due = try await connection.query("""
                SELECT site, order_id FROM forwarding.pending_orders WHERE due_at <= now()
                ORDER BY due_at LIMIT \(planBatch) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            for try await (site, order) in due.decode((String, String).self) { keys.append((site, order)) }
            guard !keys.isEmpty else { return 0 }
            let sites = keys.map(\.site), orders = keys.map(\.order)
            let counted = try await Self.orders(sites: sites, orders: orders, on: connection, logger: logger)
            let destinations = try await DestinationStore(client: postgres, logger: logger).enabled()
            var delivered: [String: [DeliveryRecord]] = [:]
            let previous = try await connection.query("""
                SELECT d.site, d.platform, d.order_id, d.kind, d.value_minor, d.state, d.sent_at
                FROM forwarding.deliveries d JOIN unnest(\(sites)::text[], \(orders)::text[]) AS k(site, order_id)
                  ON d.site = k.site AND d.order_id = k.order_id
                """, logger: logger)
            for try await (site, platform, order, kind, value, state, sentAt) in previous.decode((String, String, String, String, Int64, String, Date?).self) {
                guard let kind = DeliveryRecord.Kind(rawValue: kind), let state = DeliveryRecord.State(rawValue: state) else { continue }
                delivered[site + "\u{1F}" + platform + "\u{1F}" + order, default: []].append(DeliveryRecord(kind: kind, valueMinor: value, state: state, sentAt: sentAt))
            }
            var recorded = 0
            var later: [(site: String, order: String)] = []
            for order in counted {
                for destination in destinations where destination.site == order.site {
                    let key = order.site + "\u{1F}" + destination.platform.rawValue + "\u{1F}" + order.orderId
                    let plan: PlannedDelivery
                    switch ForwardingPlan.plan(order, destination: destination, delivered: delivered[key] ?? [], now: now) {
                    case .nothing: continue
                    case .later: later.append((order.site, order.orderId)); continue
                    case .record(let planned): plan = planned
                    }
                    // An adjustment's time is fixed when it is planned, a second past the order's
                    // previous one at least: Google keeps one adjustment per time and takes a
                    // repeated time for a resend (so a resend after a crash is recognised, and a
                    // second change of the order is not mistaken for one).
                    // (Not sent before that time: the platform refuses a time in the future.)
                    try await connection.query("""
                        INSERT INTO forwarding.deliveries (site, platform, order_id, kind, value_minor, currency, state, reason, adjusted_at, next_attempt_at)
                        SELECT \(order.site), \(destination.platform.rawValue), \(order.orderId), \(plan.kind.rawValue), \(plan.valueMinor),
                               \(order.currency), \(plan.skipped == nil ? "pending" : "skipped"), \(plan.skipped), a.at, coalesce(a.at, now())
                        FROM (SELECT CASE WHEN \(plan.kind.rawValue) IN ('retraction', 'restatement') THEN greatest(
                                  date_trunc('second', now()), \(order.occurredAt)::timestamptz + interval '1 second',
                                  (SELECT max(d.adjusted_at) + interval '1 second' FROM forwarding.deliveries d
                                   WHERE d.site = \(order.site) AND d.platform = \(destination.platform.rawValue) AND d.order_id = \(order.orderId)))
                              END AS at) a
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                    recorded += 1
                    if let reason = plan.skipped {
                        Counter(label: "tributary_forwarder_deliveries_total", dimensions: [("platform", destination.platform.rawValue), ("outcome", "skipped")]).increment()
                        logger.debug("skipped \(plan.kind.rawValue) of order \(order.orderId) of site \(order.site) to \(destination.platform.rawValue): \(reason)")
                    }
                }
            }
            try await connection.query("""
                DELETE FROM forwarding.pending_orders p USING unnest(\(sites)::text[], \(orders)::text[]) AS k(site, order_id)
                WHERE p.site = k.site AND p.order_id = k.order_id
                """, logger: logger)
            if !later.isEmpty {
                // Decided again once the pending delivery has its outcome.
                try await connection.query("""
                    INSERT INTO forwarding.pending_orders (site, order_id, due_at)
                    SELECT DISTINCT site, order_id, now() + interval '2 seconds' FROM unnest(\(later.map(\.site))::text[], \(later.map(\.order))::text[]) AS k(site, order_id)
                    ON CONFLICT (site, order_id) DO NOTHING
                    """, logger: logger)
            }
            if recorded > 0 { logger.info("planned \(recorded) deliveries for \(keys.count) changed orders") }
            return keys.count
        }
    }

    /// Records a delivery for each queued event (cart, checkout, product view, lead) of a site
    /// that forwards it to Meta: pending, or skipped with why (then the event is forgotten).
    func planDueEvents(now: Date) async throws -> Int {
        try await postgres.withTransaction(logger: logger) { connection in
            let queued = try await Self.pendingEvents(where: """
                NOT EXISTS (SELECT FROM forwarding.deliveries d WHERE d.site = p.site AND d.platform = 'meta'
                            AND d.order_id = p.event_uuid::text AND d.kind = 'event')
                ORDER BY p.received_at LIMIT \(planBatch) FOR UPDATE OF p SKIP LOCKED
                """, on: connection, logger: logger)
            guard !queued.isEmpty else { return 0 }
            let destinations = Dictionary(try await DestinationStore(client: postgres, logger: logger).enabled()
                .filter { $0.platform == .meta }.map { ($0.site, $0) }, uniquingKeysWith: { first, _ in first })
            var skipped: [String] = []
            for event in queued {
                let problem = destinations[event.order.site].map { ForwardingPlan.eventProblem(event.order, destination: $0, now: now) }
                    ?? "the site no longer forwards to Meta"
                try await connection.query("""
                    INSERT INTO forwarding.deliveries (site, platform, order_id, kind, value_minor, currency, state, reason)
                    VALUES (\(event.order.site), 'meta', \(event.order.orderId), 'event', \(event.order.revenueMinor), \(event.order.currency),
                            \(problem == nil ? "pending" : "skipped"), \(problem))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                if problem != nil { skipped.append(event.order.orderId) }
            }
            if !skipped.isEmpty {
                Counter(label: "tributary_forwarder_deliveries_total", dimensions: [("platform", "meta"), ("outcome", "skipped")]).increment(by: skipped.count)
                try await connection.query("DELETE FROM forwarding.pending_events WHERE event_uuid::text = ANY(\(skipped))", logger: logger)
            }
            return queued.count
        }
    }

    /// Queued events (`forwarding.pending_events` aliased `p`, with `condition`), each as an
    /// order-like record for the Meta client: its uuid as id, its amount, its signals.
    static func pendingEvents(where condition: SQLFragment, on connection: PostgresConnection, logger: Logger) async throws
        -> [(order: CountedOrder, metaEvent: String, items: [(id: String, quantity: Int64)])] {
        let statement: SQLFragment = """
            SELECT p.site, p.event_uuid::text, p.meta_event, p.occurred_at, p.person_id, p.url, coalesce(p.currency, ''),
                   coalesce(p.amount_minor, 0), coalesce(p.items::text, '[]'), p.signals::text
            FROM forwarding.pending_events p WHERE \(condition)
            """
        var result: [(order: CountedOrder, metaEvent: String, items: [(id: String, quantity: Int64)])] = []
        for try await (site, uuid, name, occurredAt, person, url, currency, amount, itemsText, signalsText)
            in try await connection.query(statement.query, logger: logger).decode((String, String, String, Date, String, String?, String, Int64, String, String).self) {
            let merged = OrderSignals(copies: [OrderSignals.Copy(json: signalsText, url: url)])
            let items = ((try? JSONValue.parse(itemsText))?.arrayValue ?? []).compactMap { item -> (id: String, quantity: Int64)? in
                guard let id = item["product_id"]?.scalarText ?? item["sku"]?.scalarText else { return nil }
                return (id, Int64(item["quantity"]?.scalarText ?? "") ?? 1)
            }
            result.append((CountedOrder(site: site, orderId: uuid, occurredAt: occurredAt, personId: person, currency: currency,
                                        revenueMinor: amount, refundedMinor: 0, signals: merged), name, items))
        }
        return result
    }

    /// The orders as counted now, with their copies' signals merged.
    static func orders(sites: [String], orders: [String], on connection: PostgresConnection, logger: Logger) async throws -> [CountedOrder] {
        var result: [String: CountedOrder] = [:]
        let rows = try await connection.query("""
            SELECT o.site, o.order_id, o.occurred_at, o.person_id, o.currency, o.revenue_minor, o.refunded_minor
            FROM analytics.orders o JOIN unnest(\(sites)::text[], \(orders)::text[]) AS k(site, order_id)
              ON o.site = k.site AND o.order_id = k.order_id
            """, logger: logger)
        for try await (site, order, occurredAt, person, currency, revenue, refunded) in rows.decode((String, String, Date, String, String, Int64, Int64).self) {
            result[site + "\u{1F}" + order] = CountedOrder(site: site, orderId: order, occurredAt: occurredAt, personId: person, currency: currency,
                                                        revenueMinor: revenue, refundedMinor: refunded, signals: OrderSignals())
        }
        var copies: [String: [OrderSignals.Copy]] = [:]
        let signalRows = try await connection.query("""
            SELECT s.site, s.order_id, s.signals::text, s.url
            FROM forwarding.order_signals s JOIN unnest(\(sites)::text[], \(orders)::text[]) AS k(site, order_id)
              ON s.site = k.site AND s.order_id = k.order_id
            ORDER BY (s.origin = 'browser') DESC, s.received_at, s.event_uuid
            """, logger: logger)
        for try await (site, order, text, url) in signalRows.decode((String, String, String, String?).self) {
            copies[site + "\u{1F}" + order, default: []].append(OrderSignals.Copy(json: text, url: url))
        }
        for (key, list) in copies { result[key]?.signals = OrderSignals(copies: list) }
        return Array(result.values)
    }

    // MARK: send

    func destinationsWithDueDeliveries() async throws -> [(String, AdPlatform)] {
        let rows = try await postgres.query("""
            SELECT DISTINCT site, platform FROM forwarding.deliveries WHERE state = 'pending' AND next_attempt_at <= now()
            """, logger: logger)
        var result: [(String, AdPlatform)] = []
        for try await (site, platform) in rows.decode((String, String).self) {
            if let platform = AdPlatform(rawValue: platform) { result.append((site, platform)) }
        }
        return result
    }

    /// Sends one batch of a destination's due deliveries; returns how many it took.
    func sendDue(site: String, platform: AdPlatform) async throws -> Int {
        let limit = min(sendBatch, platform == .meta ? MetaConversions.batchLimit : GoogleAds.batchLimit)
        return try await postgres.withTransaction(logger: logger) { connection in
            var claimed: [ClaimedDelivery] = []
            let rows = try await connection.query("""
                SELECT order_id, kind, value_minor, attempts, adjusted_at FROM forwarding.deliveries
                WHERE site = \(site) AND platform = \(platform.rawValue) AND state = 'pending' AND next_attempt_at <= now()
                ORDER BY created_at, order_id LIMIT \(limit) FOR UPDATE SKIP LOCKED
                """, logger: logger)
            for try await (order, kind, value, attempts, adjustedAt) in rows.decode((String, String, Int64, Int, Date?).self) {
                if let kind = DeliveryRecord.Kind(rawValue: kind) {
                    claimed.append(ClaimedDelivery(order: order, kind: kind, value: value, attempts: attempts, adjustedAt: adjustedAt))
                }
            }
            guard !claimed.isEmpty else { return 0 }
            let store = DestinationStore(client: postgres, logger: logger)
            guard let destination = try await store.destination(site: site, platform: platform), destination.enabled else {
                for delivery in claimed {
                    try await record(delivery, site: site, platform: platform, state: "skipped", reason: "the destination was removed or disabled before it was sent", on: connection)
                }
                return claimed.count
            }
            guard let secretBox, let credentials = try await store.credentials(site: site, platform: platform, box: secretBox) else {
                throw PlatformCallError(description: "the credentials of the \(platform.pathName) destination of site \(site) cannot be opened (is TRIBUTARY_SECRET_KEY the one they were sealed with?)")
            }
            let orderClaims = claimed.filter { $0.kind != .event }.map(\.order), eventClaims = claimed.filter { $0.kind == .event }.map(\.order)
            let counted = orderClaims.isEmpty ? [] : try await Self.orders(sites: orderClaims.map { _ in site }, orders: orderClaims, on: connection, logger: logger)
            let byOrder = Dictionary(counted.map { ($0.orderId, $0) }, uniquingKeysWith: { first, _ in first })
            let events = eventClaims.isEmpty ? [:] : Dictionary(
                try await Self.pendingEvents(where: "p.site = \(site) AND p.event_uuid::text = ANY(\(eventClaims))", on: connection, logger: logger)
                    .map { ($0.order.orderId, $0) }, uniquingKeysWith: { first, _ in first })
            let items = try await Self.items(site: site, orders: claimed.map(\.order), on: connection, logger: logger)
            var outgoing: [OutgoingDelivery] = []
            var sending: [ClaimedDelivery] = []
            for delivery in claimed where delivery.kind == .event {
                guard let event = events[delivery.order] else {
                    try await record(delivery, site: site, platform: platform, state: "skipped", reason: "the event's details are gone", on: connection)
                    continue
                }
                if let tooOld = ForwardingPlan.tooOld(event.order, platform: platform, now: Date()) {
                    // Retries took it past Meta's window.
                    try await record(delivery, site: site, platform: platform, state: "skipped", reason: tooOld, on: connection)
                    continue
                }
                outgoing.append(OutgoingDelivery(kind: .event, valueMinor: delivery.value, order: event.order, items: event.items,
                                                 adjustedAt: Date(), metaEvent: event.metaEvent))
                sending.append(delivery)
            }
            for delivery in claimed where delivery.kind != .event {
                guard let order = byOrder[delivery.order] else {
                    try await record(delivery, site: site, platform: platform, state: "skipped", reason: "the order is no longer counted", on: connection)
                    continue
                }
                var value = delivery.value
                if delivery.kind == .conversion, let tooOld = ForwardingPlan.tooOld(order, platform: platform, now: Date()) {
                    // Retries took it past the platform's window.
                    try await record(delivery, site: site, platform: platform, state: "skipped", reason: tooOld, on: connection)
                    continue
                }
                if delivery.kind == .conversion && value != order.netMinor {
                    // A conversion goes with what the order is worth when it leaves.
                    if order.netMinor == 0 {
                        try await record(delivery, site: site, platform: platform, state: "skipped", reason: "refunded in full before it was forwarded", on: connection)
                        continue
                    }
                    try await connection.query("""
                        UPDATE forwarding.deliveries SET value_minor = \(order.netMinor)
                        WHERE site = \(site) AND platform = \(platform.rawValue) AND order_id = \(delivery.order) AND kind = 'conversion'
                        """, logger: logger)
                    value = order.netMinor
                }
                outgoing.append(OutgoingDelivery(kind: delivery.kind, valueMinor: value, order: order, items: items[delivery.order] ?? [],
                                                 adjustedAt: delivery.adjustedAt ?? Date()))
                var sent = delivery
                sent.value = value
                sending.append(sent)
            }
            guard !outgoing.isEmpty else { return claimed.count }
            let outcomes: [DeliveryOutcome]
            switch platform {
            case .meta: outcomes = await meta.send(outgoing, destination: destination, credentials: credentials)
            case .googleAds:
                outcomes = await google.send(outgoing, destination: destination, credentials: credentials,
                                             timeZone: try await Self.timeZone(site: site, on: connection, logger: logger))
            }
            var counts: [String: Int] = [:]
            for (delivery, outcome) in zip(sending, outcomes) {
                switch outcome {
                case .sent:
                    try await record(delivery, site: site, platform: platform, state: "sent", reason: nil, on: connection)
                    counts["sent", default: 0] += 1
                case .failed(let message):
                    try await record(delivery, site: site, platform: platform, state: "failed", reason: message, on: connection)
                    counts["failed", default: 0] += 1
                case .retry(let message) where delivery.attempts + 1 >= maximumAttempts:
                    try await record(delivery, site: site, platform: platform, state: "failed", reason: "gave up after \(delivery.attempts + 1) attempts: \(message)", on: connection)
                    counts["failed", default: 0] += 1
                case .retry(let message):
                    // 2, 4, 8 … seconds, at most 5 minutes.
                    let backoff = min(300, 1 << min(delivery.attempts + 1, 9))
                    try await connection.query("""
                        UPDATE forwarding.deliveries SET attempts = attempts + 1, reason = \(message), updated_at = now(),
                               next_attempt_at = now() + make_interval(secs => \(backoff))
                        WHERE site = \(site) AND platform = \(platform.rawValue) AND order_id = \(delivery.order)
                          AND kind = \(delivery.kind.rawValue) AND value_minor = \(delivery.value)
                        """, logger: logger)
                    counts["retried", default: 0] += 1
                }
            }
            // An event's details (its signals with the shopper's user agent and IP) are kept
            // only until its delivery is settled.
            let settledEvents = zip(sending, outcomes).compactMap { delivery, outcome -> String? in
                guard delivery.kind == .event else { return nil }
                if case .retry = outcome, delivery.attempts + 1 < maximumAttempts { return nil }
                return delivery.order
            } + eventClaims.filter { uuid in !sending.contains { $0.order == uuid && $0.kind == .event } }
            if !settledEvents.isEmpty {
                try await connection.query("DELETE FROM forwarding.pending_events WHERE site = \(site) AND event_uuid::text = ANY(\(settledEvents))", logger: logger)
            }
            for (outcome, count) in counts {
                Counter(label: "tributary_forwarder_deliveries_total", dimensions: [("platform", platform.rawValue), ("outcome", outcome)]).increment(by: count)
            }
            let failure = zip(sending, outcomes).compactMap { _, outcome -> String? in
                switch outcome { case .failed(let message), .retry(let message): message; case .sent: nil }
            }.first
            let summary = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + (failure.map { " (\($0))" } ?? "")
            logger.info("\(platform.pathName) of site \(site): \(summary)")
            return claimed.count
        }
    }

    /// A delivery taken to send: what `forwarding.deliveries` holds of it.
    struct ClaimedDelivery {
        var order: String
        var kind: DeliveryRecord.Kind
        var value: Int64
        var attempts: Int
        /// A retraction's or restatement's time, fixed when it was planned.
        var adjustedAt: Date?
    }

    func record(_ delivery: ClaimedDelivery, site: String, platform: AdPlatform,
                state: String, reason: String?, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE forwarding.deliveries SET state = \(state), reason = \(reason), attempts = attempts + \(state == "skipped" ? 0 : 1),
                   updated_at = now(), sent_at = CASE WHEN \(state) = 'sent' THEN now() END
            WHERE site = \(site) AND platform = \(platform.rawValue) AND order_id = \(delivery.order)
              AND kind = \(delivery.kind.rawValue) AND value_minor = \(delivery.value)
            """, logger: logger)
    }

    static func items(site: String, orders: [String], on connection: PostgresConnection, logger: Logger) async throws -> [String: [(id: String, quantity: Int64)]] {
        var result: [String: [(id: String, quantity: Int64)]] = [:]
        let rows = try await connection.query("""
            SELECT order_id, coalesce(product_id, sku), quantity FROM analytics.order_items
            WHERE site = \(site) AND order_id = ANY(\(orders)) AND coalesce(product_id, sku) IS NOT NULL ORDER BY order_id, position
            """, logger: logger)
        for try await (order, id, quantity) in rows.decode((String, String, Int64).self) { result[order, default: []].append((id, quantity)) }
        return result
    }

    static func timeZone(site: String, on connection: PostgresConnection, logger: Logger) async throws -> TimeZone {
        let rows = try await connection.query("SELECT timezone FROM control.sites WHERE id = \(site)", logger: logger)
        for try await name in rows.decode(String.self) { return TimeZone(identifier: name) ?? TimeZone(identifier: "UTC")! }
        return TimeZone(identifier: "UTC")!
    }

    /// Deletes the shopper's user agent and IP once an order's conversions are settled (or
    /// after 7 days), and every signal after 100 days (past Google's 90-day window).
    func forgetShopperDetails() async throws {
        try await postgres.query("""
            UPDATE forwarding.order_signals s SET signals = s.signals - 'user_agent' - 'ip'
            WHERE (s.signals ? 'user_agent' OR s.signals ? 'ip')
              AND (s.received_at < now() - interval '7 days'
                   OR (NOT EXISTS (SELECT FROM forwarding.pending_orders p WHERE p.site = s.site AND p.order_id = s.order_id)
                       AND EXISTS (SELECT FROM forwarding.deliveries d WHERE d.site = s.site AND d.order_id = s.order_id AND d.kind = 'conversion')
                       AND NOT EXISTS (SELECT FROM forwarding.deliveries d WHERE d.site = s.site AND d.order_id = s.order_id
                                       AND d.kind = 'conversion' AND d.state = 'pending')))
            """, logger: logger)
        try await postgres.query("DELETE FROM forwarding.order_signals WHERE received_at < now() - interval '100 days'", logger: logger)
        // Events a removed destination left behind.
        try await postgres.query("DELETE FROM forwarding.pending_events WHERE received_at < now() - interval '7 days'", logger: logger)
    }
}
