import ArgumentParser
import Aggregator
import Contracts
import Foundation
import Sessionizer

/// `tributary bench-data`: the benchmarks' input, a generated week of shop traffic written with
/// the services' own message encoder (`MessageCoding.encode` of `RawEvent` and `EnrichedMessage`,
/// Shared/Contracts/EventEncoding.swift).
/// Hidden: scripts/benchlib runs it (scripts/bench-sessionizer, scripts/bench-aggregator).
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-data",
        abstract: "Write benchmark data: a generated week of shop traffic as Kafka messages (used by scripts/benchlib).",
        discussion: """
            One traffic model for both topics: each visitor comes back in a few sessions over a
            fixed week, each session lands from a source (paid search with gclid, paid social with
            fbclid, newsletter, organic search, social and blog referrers, direct), browses pages,
            views and carts products; some buy (a browser purchase, most also reported by the
            shop's server with the same order id), some log in. `raw` writes the RawEvents the
            Collector publishes; `enriched` the same traffic (plus a few server refunds) as the
            Sessionizer publishes it: sessions (30 minutes of inactivity, 24 hours at most, a new
            campaign starts a new one), source context, persons and identity links.
            Messages go to stdout, one per line: key, a tab, the JSON value. Deterministic for a
            seed: the random numbers are Python's `random.Random(seed)`, so a seed gives the same
            traffic as the former scripts/bench/gen-*-events.py.
            """,
        shouldDisplay: false,
        subcommands: [Raw.self, Enriched.self, Sites.self, CopyColumns.self]
    )

    struct Size: ParsableArguments {
        @Option(help: "Messages to write (enriched: events; identity links come on top).") var events = 200_000
        @Option(help: "Distinct visitors.") var visitors = 20_000
        @Option(help: "Sites the visitors belong to, 1...\(BenchTraffic.sites.count).") var sites = BenchTraffic.sites.count
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "Also write the statistics to this file as key=value lines (they always go to stderr).")
        var stats: String?

        func validate() throws {
            guard events >= 1, (1...events).contains(visitors), (1...BenchTraffic.sites.count).contains(sites) else {
                throw ValidationError("need events >= visitors >= 1 and 1 <= sites <= \(BenchTraffic.sites.count)")
            }
        }
    }

    struct Raw: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "RawEvent messages keyed site + U+001F + anonymous id, in the Collector's order (by received_at).")
        @OptionGroup var size: Size

        func run() throws {
            var traffic = BenchTraffic(mode: .raw, seed: size.seed)
            let messages = traffic.generate(events: size.events, visitors: size.visitors, sites: size.sites)
            var out = OutputFile.standardOutput
            var bytes = 0
            for message in messages {
                out.write(message.key, message.value)
                bytes += message.value.count
            }
            out.flush()
            var stats = traffic.rawStats
            stats += [
                ("messages", messages.count), ("visitors", size.visitors), ("sites", size.sites),
                ("mean_value_bytes", roundedMean(bytes, messages.count)), ("orders", traffic.orderSequence),
            ]
            try writeStats(stats, name: "raw", to: size.stats)
        }
    }

    struct Enriched: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "EnrichedEvent and identity link messages keyed site + U+001F + person (links: anonymous id), by received_at.")
        @OptionGroup var size: Size
        @Option(help: "Also write the analytics.events rows of the events in COPY text format (columns: `bench-data copy-columns`).")
        var copy: String?

        func run() throws {
            var traffic = BenchTraffic(mode: .enriched, seed: size.seed)
            let messages = traffic.generate(events: size.events, visitors: size.visitors, sites: size.sites)
            var out = OutputFile.standardOutput
            var copyFile = try copy.map { try OutputFile(path: $0) }
            var bytes = 0, copyBytes = 0
            for message in messages {
                out.write(message.key, message.value)
                bytes += message.value.count
                if let row = message.copyRow {
                    copyBytes += row.count
                    copyFile?.write(row)
                }
            }
            out.flush()
            copyFile?.flush()
            let enriched = traffic.enrichedCount
            var stats = traffic.enrichedStats
            stats += [
                ("messages", messages.count), ("visitors", size.visitors), ("sites", size.sites),
                ("mean_value_bytes", roundedMean(bytes, messages.count)), ("orders", traffic.orderSequence),
                ("copy_rows", enriched), ("mean_copy_row_bytes", roundedMean(copyBytes, max(1, enriched))),
            ]
            try writeStats(stats, name: "enriched", to: size.stats)
        }
    }

    struct Sites: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the sites: id, name, time zone, currency, host (tab-separated).")
        @Option(help: "How many.") var sites = BenchTraffic.sites.count

        func run() throws {
            for (index, site) in BenchTraffic.sites.prefix(max(0, sites)).enumerated() {
                print("\(site.id)\tBenchmark shop \(index + 1)\t\(site.timeZone)\t\(site.currency.code)\t\(site.host)")
            }
        }
    }

    struct CopyColumns: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy-columns", abstract: "Print the columns of `enriched --copy` rows, comma-separated.")

        func run() throws { print(CopyRow.columns.joined(separator: ",")) }
    }
}

/// Python's `round(a / b)` (halves to even).
private func roundedMean(_ total: Int, _ count: Int) -> Int {
    Int((Double(total) / Double(count)).rounded(.toNearestOrEven))
}

private func writeStats(_ stats: [(String, Int)], name: String, to path: String?) throws {
    let text = stats.map { "\($0.0)=\($0.1)" }
    FileHandle.standardError.write(Data("bench-data \(name): \(text.joined(separator: " "))\n".utf8))
    if let path {
        try Data((text.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
    }
}

/// A buffered output file: `key TAB value NEWLINE` lines, or rows as they are.
private struct OutputFile {
    let handle: FileHandle
    var buffer: [UInt8] = []

    static var standardOutput: OutputFile { OutputFile(handle: .standardOutput) }

    init(handle: FileHandle) {
        self.handle = handle
        buffer.reserveCapacity(1 << 20)
    }

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw ValidationError("cannot write \(path)")
        }
        self.init(handle: handle)
    }

    mutating func write(_ key: String, _ value: [UInt8]) {
        buffer.append(contentsOf: key.utf8)
        buffer.append(UInt8(ascii: "\t"))
        buffer.append(contentsOf: value)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 20 { flush() }
    }

    mutating func write(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 20 { flush() }
    }

    mutating func flush() {
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

// MARK: - The traffic model

/// A week of a shop's traffic on up to four sites. `raw` yields what the Collector publishes,
/// `enriched` what the Sessionizer publishes for the same kind of traffic (with a few refunds,
/// which consume random numbers, so its events are not those of `raw` for the same seed).
struct BenchTraffic {
    enum Mode { case raw, enriched }

    struct Site {
        let id: String
        let host: String
        let currency: Currency
        let timeZone: String
    }

    static let sites = [
        Site(id: "bench-shop-1", host: "shop-one.example", currency: Currency(code: "EUR")!, timeZone: "Europe/Berlin"),
        Site(id: "bench-shop-2", host: "www.shop-two.example", currency: Currency(code: "USD")!, timeZone: "America/New_York"),
        Site(id: "bench-shop-3", host: "shop3.example.jp", currency: Currency(code: "JPY")!, timeZone: "Asia/Tokyo"),
        Site(id: "bench-shop-4", host: "boutique-four.example", currency: Currency(code: "EUR")!, timeZone: "Europe/Paris"),
    ]
    static let start: Int64 = 1_793_491_200_000  // 2026-11-01T00:00:00Z: a fixed week, so runs are identical
    static let week: Int64 = 7 * 86_400_000
    enum Source: CaseIterable { case googleCPC, facebookPaid, newsletter, organic, social, referral, direct }
    static let sourceWeights: [Double] = [22, 12, 8, 20, 7, 6, 25]
    static let campaigns = ["black-friday", "winter-sale", "brand", "retargeting", "new-arrivals", "gift-guide"]
    static let searchEngines = ["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"]
    static let socialSites = ["https://www.instagram.com/", "https://l.facebook.com/", "https://www.pinterest.com/", "https://t.co/abc"]
    static let clients = [
        ClientInfo(browser: "Chrome", os: "Windows", device: "desktop", isBot: false),
        ClientInfo(browser: "Safari", os: "iOS", device: "mobile", isBot: false),
        ClientInfo(browser: "Chrome", os: "Android", device: "mobile", isBot: false),
        ClientInfo(browser: "Firefox", os: "Linux", device: "desktop", isBot: false),
        ClientInfo(browser: "Safari", os: "macOS", device: "desktop", isBot: false),
        ClientInfo(browser: "Safari", os: "iPadOS", device: "tablet", isBot: false),
    ]
    static let categories = ["shoes", "jackets", "bags", "accessories", "sale", "new"]
    static let paymentMethods = ["card", "paypal", "klarna", "apple_pay"]
    static let inactivity: Int64 = 30 * 60_000
    /// Replaced by the event's UUIDv7 once its received_at is known.
    static let placeholder = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    static let maximumSession: Int64 = 24 * 3_600_000

    /// One Kafka message (and for enriched events, its analytics.events row).
    struct Message {
        var receivedAt: Int64
        var key: String
        var value: [UInt8]
        var copyRow: [UInt8]?
    }

    let mode: Mode
    var random: PythonRandom
    private(set) var orderSequence = 0
    private var counts: [String: Int] = [:]
    private let zones = BenchTraffic.sites.map { TimeZone(identifier: $0.timeZone)! }

    init(mode: Mode, seed: UInt64) {
        self.mode = mode
        random = PythonRandom(seed: seed)
    }

    var rawStats: [(String, Int)] {
        ["sessions", "pageviews", "events", "identifies", "browser_purchases", "server_purchases", "campaign_sessions"]
            .map { ($0, counts[$0, default: 0]) }
    }

    var enrichedStats: [(String, Int)] {
        rawStats + ["links", "refunds", "enriched"].map { ($0, counts[$0, default: 0]) }
    }

    var enrichedCount: Int { counts["enriched", default: 0] }

    private mutating func count(_ name: String, _ by: Int = 1) { counts[name, default: 0] += by }

    /// Every visitor gets at least one event; the rest go to visitors in proportion to a
    /// heavy-tailed weight (a few browse a lot, most a little). Sorted by received_at (a
    /// visitor's messages keep their order).
    mutating func generate(events: Int, visitors: Int, sites: Int) -> [Message] {
        var cumulative: [Double] = []
        cumulative.reserveCapacity(visitors)
        var total = 0.0
        for _ in 0..<visitors {
            total += random.lognormvariate(0, 1)
            cumulative.append(total)
        }
        var budgets = [Int](repeating: 1, count: visitors)
        for _ in 0..<(events - visitors) {
            let x = random.random() * total
            var low = 0, high = cumulative.count  // bisect_left
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle] < x { low = middle + 1 } else { high = middle }
            }
            budgets[min(low, visitors - 1)] += 1
        }
        var messages: [Message] = []
        messages.reserveCapacity(events + events / 50)
        for (index, budget) in budgets.enumerated() {
            visitor(siteIndex: index % sites, budget: budget, into: &messages)
        }
        let order = messages.indices.sorted { (messages[$0].receivedAt, $0) < (messages[$1].receivedAt, $1) }
        return order.map { messages[$0] }
    }

    // MARK: Random pieces

    mutating func uuid7(_ millis: Int64) -> UUID {
        let r = random.getrandbits(74)  // words, least significant first
        let high = UInt64(millis) << 16 | 0x7 << 12 | UInt64(r[2]) << 2 | UInt64(r[1] >> 30)
        let low = 0b10 << 62 | UInt64(r[1] & 0x3FFF_FFFF) << 32 | UInt64(r[0])
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * index))
        }
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    mutating func randomID(_ bits: Int) -> String { random.hex(bits) }

    mutating func product(_ siteIndex: Int) -> LineItem {
        let n = random.randrange(1, 400)
        let exponent = Self.sites[siteIndex].currency.exponent
        let price = Int64(random.randrange(15, 250)) * (exponent == 0 ? 120 : Int64(pow(10, Double(exponent))))
        var item = LineItem(productId: "p-\(n)", sku: "SKU-" + padded(n, 5), name: "Product \(n)", priceMinor: price)
        item.category = random.choice(Self.categories)
        return item
    }

    /// (url, referrer, from a campaign) of a session's first pageview.
    mutating func landing(_ siteIndex: Int, _ source: Source) -> (String, String?, Bool) {
        let host = Self.sites[siteIndex].host
        let category = random.choice(Self.categories)
        let productNumber = random.randrange(1, 400)
        let path = random.choice(["/", "/", "/category/\(category)", "/products/p-\(productNumber)"])
        let base = "https://\(host)\(path)"
        let campaign = random.choice(Self.campaigns)
        switch source {
        case .googleCPC:
            return ("\(base)?utm_source=google&utm_medium=cpc&utm_campaign=\(campaign)&utm_term=winter+boots"
                        + "&gclid=Cj0KCQiA\(randomID(96))", "https://www.google.com/", true)
        case .facebookPaid:
            let content = random.randrange(1, 9)
            return ("\(base)?utm_source=facebook&utm_medium=paid_social&utm_campaign=\(campaign)"
                        + "&utm_content=carousel-\(content)&fbclid=IwAR\(randomID(96))", "https://l.facebook.com/", true)
        case .newsletter:
            return ("\(base)?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-\(random.randrange(40, 48))", nil, true)
        case .organic:
            return (base, random.choice(Self.searchEngines), false)
        case .social:
            return (base, random.choice(Self.socialSites), false)
        case .referral:
            let blog = random.randrange(1, 30)
            return (base, "https://blog\(blog).example.org/posts/\(random.randrange(1, 500))", false)
        case .direct:
            return (base, nil, false)
        }
    }

    // MARK: One visitor

    struct Session {
        var id: UUID
        var startedAt: Int64
        var lastAt: Int64
        var context: SourceContext
        var campaignKey: String?
    }

    /// Appends one visitor's `budget` events (and, enriched, identity links).
    mutating func visitor(siteIndex: Int, budget: Int, into messages: inout [Message]) {
        let site = Self.sites[siteIndex]
        let h = randomID(128)  // a tracker-style random id
        let anonymousId = uuidShaped(h)
        let client = random.choice(Self.clients)
        var userId: String?
        var personId = anonymousId
        var session: Session?
        var orders = 0
        // Most visitors come back within the week; heavy visitors stretch over more time.
        var t = Self.start + Int64(random.randrange(0, Int(Self.week)))
        var lastReceived: Int64 = 0
        var emitted = 0

        func stamp(_ event: inout RawEvent, _ at: Int64, _ random: inout PythonRandom) {
            event.occurredAt = at
            let delay = event.origin == .browser ? random.randrange(20, 800) : random.randrange(5, 60)
            event.receivedAt = max(at + Int64(delay), lastReceived + 1)
            lastReceived = event.receivedAt
        }

        while emitted < budget {
            if mode == .raw { count("sessions") }
            let source = Self.Source.allCases[random.choicesIndex(cumulativeWeights: Self.cumulativeSourceWeights)]
            let (url, referrer, campaign) = landing(siteIndex, source)
            if mode == .raw && campaign { count("campaign_sessions") }
            let length = min(budget - emitted, 1 + Int(random.expovariate(1.0 / 5.0)))
            var cart: [LineItem] = []
            var page = String(url.prefix { $0 != "?" })
            for position in 0..<length {
                if emitted >= budget { break }  // a server copy of a purchase used the last slot
                var e = RawEvent(
                    eventUUID: Self.placeholder, site: site.id, type: .pageview, name: "pageview", anonymousId: anonymousId,
                    userId: userId, occurredAt: 0, receivedAt: 0, origin: .browser, client: client)
                var purchase = false
                if position == 0 {
                    e.url = url
                    e.referrer = referrer
                    count("pageviews")
                } else {
                    t += Int64(random.randrange(4_000, 90_000))
                    let roll = random.random()
                    if !cart.isEmpty && roll < 0.12 {  // check out and buy
                        orderSequence += 1
                        orders += 1
                        let amount = cart.reduce(Int64(0)) { $0 + ($1.priceMinor ?? 0) }
                        e.type = .event
                        e.name = "purchase"
                        e.action = .purchase
                        e.eventId = "ord-\(siteIndex + 1)-\(orderSequence)"
                        e.url = "https://\(site.host)/checkout/thank-you"
                        e.referrer = "https://\(site.host)/checkout"
                        e.revenue = Money(currency: site.currency, amountMinor: amount)
                        e.items = cart
                        var order = OrderInfo()
                        order.totalMinor = amount
                        order.paymentMethod = random.choice(Self.paymentMethods)
                        e.order = order
                        count("browser_purchases")
                        purchase = true
                        cart = []
                    } else if roll < 0.22 {
                        let item = product(siteIndex)
                        e.type = .event
                        e.name = "view_item"
                        e.action = .viewItem
                        e.items = [item]
                        e.url = "https://\(site.host)/products/\(item.productId!)"
                        e.referrer = page
                        e.properties = "{\"list\":\"category\",\"position\":\(random.randrange(1, 25))}"
                    } else if roll < 0.30 {
                        let item = product(siteIndex)
                        cart.append(item)
                        e.type = .event
                        e.name = "add_to_cart"
                        e.action = .addToCart
                        e.items = [item]
                        e.url = "https://\(site.host)/products/\(item.productId!)"
                        e.referrer = page
                    } else if roll < 0.32 && userId == nil {
                        userId = "user-\(siteIndex + 1)-\(randomID(40))"
                        e.type = .identify
                        e.name = "identify"
                        e.userId = userId
                        e.url = "https://\(site.host)/account"
                        e.referrer = page
                        count("identifies")
                    } else {
                        let category = random.choice(Self.categories)
                        let productNumber = random.randrange(1, 400)
                        let path = random.choice([
                            "/category/\(category)", "/products/p-\(productNumber)", "/", "/search?q=boots", "/about", "/cart",
                        ])
                        e.url = "https://\(site.host)\(path)"
                        e.referrer = page
                        page = e.url!
                        count("pageviews")
                    }
                    if e.type == .event { count("events") }
                }
                stamp(&e, t, &random)
                e.eventUUID = uuid7(e.receivedAt)
                switch mode {
                case .raw:
                    emit(e, into: &messages)
                case .enriched:
                    // Sessionization: browser events other than identify start or join a session.
                    if e.type != .identify {
                        var context: (context: SourceContext, campaignKey: String?)? =
                            position == 0 ? Sessionization.source(url: e.url, referrer: e.referrer) : nil
                        let key = context?.campaignKey
                        if var current = session, t - current.lastAt <= Self.inactivity,
                           t - current.startedAt <= Self.maximumSession, key == nil || key == current.campaignKey {
                            current.lastAt = t
                            session = current
                        } else {
                            if context == nil { context = Sessionization.source(url: e.url, referrer: e.referrer) }
                            session = Session(id: e.eventUUID, startedAt: t, lastAt: t, context: context!.context,
                                              campaignKey: context!.campaignKey)
                            count("sessions")
                            if campaign { count("campaign_sessions") }
                        }
                    }
                    // The first event with a user id links the anonymous id to it (the
                    // Sessionizer's IdentityLink, published after the event); the person is the
                    // user from then on.
                    let link = userId != nil && personId != userId
                    if link { personId = userId! }
                    emit(e, session: session, personId: personId, into: &messages)
                    if link {
                        count("links")
                        let identity = IdentityLink(site: site.id, anonymousId: anonymousId, personId: userId!,
                                                    linkedAt: e.occurredAt, eventUUID: e.eventUUID)
                        messages.append(Message(receivedAt: e.receivedAt, key: identity.partitionKey,
                                                value: MessageCoding.encode(EnrichedMessage.link(identity)), copyRow: nil))
                    }
                }
                emitted += 1
                // The shop's server reports most purchases too (same order id): one order, two events.
                guard purchase, emitted < budget, random.random() < 0.7 else { continue }
                t += Int64(random.randrange(2_000, 30_000))
                var server = RawEvent(
                    eventUUID: Self.placeholder, site: site.id, type: .event, name: "purchase", action: .purchase,
                    eventId: e.eventId, anonymousId: anonymousId, userId: userId, occurredAt: 0, receivedAt: 0,
                    revenue: e.revenue, order: e.order, items: e.items, origin: .server)
                if mode == .enriched { server.order?.isFirstPurchase = orders == 1 }
                stamp(&server, t, &random)
                server.eventUUID = uuid7(server.receivedAt)
                count("server_purchases")
                count("events")
                emit(server, session: session, personId: personId, into: &messages)
                emitted += 1
                // Enriched only: a few orders are cancelled right after, a server refund of all or part.
                guard mode == .enriched, emitted < budget, random.random() < 0.05 else { continue }
                t += Int64(random.randrange(60_000, 600_000))
                let amount = e.revenue!.amountMinor
                let part = random.random() < 0.6 ? amount : max(1, amount / 2)
                var refund = RawEvent(
                    eventUUID: Self.placeholder, site: site.id, type: .event, name: "refund", action: .refund, eventId: e.eventId,
                    anonymousId: anonymousId, userId: userId, occurredAt: 0, receivedAt: 0,
                    revenue: Money(currency: site.currency, amountMinor: part), origin: .server)
                stamp(&refund, t, &random)
                refund.eventUUID = uuid7(refund.receivedAt)
                count("refunds")
                count("events")
                emit(refund, session: session, personId: personId, into: &messages)
                emitted += 1
            }
            // Next visit: mostly hours to days later; sometimes minutes later from another campaign.
            if random.random() < 0.1 {
                t += Int64(random.randrange(5 * 60_000, 20 * 60_000))
            } else {
                t += 35 * 60_000 + Int64(random.expovariate(1.0 / (20 * 3_600_000)))
            }
        }
    }

    static let cumulativeSourceWeights: [Double] = {
        var total = 0.0
        return sourceWeights.map { total += $0; return total }
    }()

    private mutating func emit(_ event: RawEvent, session: Session? = nil, personId: String = "", into messages: inout [Message]) {
        switch mode {
        case .raw:
            messages.append(Message(receivedAt: event.receivedAt, key: event.partitionKey, value: MessageCoding.encode(event)))
        case .enriched:
            let enriched = EnrichedEvent(
                event: event, sessionId: session?.id ?? event.eventUUID, personId: personId,
                sessionStartedAt: session?.startedAt ?? event.occurredAt, context: session?.context ?? .unattributed)
            let siteIndex = Self.sites.firstIndex { $0.id == event.site }!
            count("enriched")
            messages.append(Message(
                receivedAt: event.receivedAt, key: enriched.partitionKey, value: MessageCoding.encode(enriched),
                copyRow: CopyRow.line(enriched, zone: zones[siteIndex])))
        }
    }
}

private func padded(_ n: Int, _ width: Int) -> String {
    let digits = String(n)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// 32 hex digits as 8-4-4-4-12.
private func uuidShaped(_ hex: String) -> String {
    let c = Array(hex)
    return [c[0..<8], c[8..<12], c[12..<16], c[16..<20], c[20..<32]].map { String($0) }.joined(separator: "-")
}

// MARK: - COPY rows

/// The row the Aggregator stores in analytics.events for an enriched event, in COPY text
/// format: the ceiling of its benchmark loads these with `COPY`.
enum CopyRow {
    static let columns = [
        "site", "event_uuid", "occurred_at", "received_at", "day", "type", "name", "action", "event_id", "origin",
        "anonymous_id", "user_id", "person_id", "session_id", "source", "medium", "campaign", "channel",
        "referrer_domain", "landing_page", "url", "referrer", "currency", "amount_minor", "properties",
        "browser", "os", "device", "is_bot", "is_first_purchase", "items",
    ]

    static func line(_ enriched: EnrichedEvent, zone: TimeZone) -> [UInt8] {
        let e = enriched.event, context = enriched.context
        let day = Timestamp.utcDate(e.occurredAt + Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(e.occurredAt) / 1000))) * 1000)
        var items: String?
        if !e.items.isEmpty {
            var writer = JSONBytesWriter(capacity: 256)
            writer.beginArray()
            for item in e.items {
                writer.element()
                writer.beginObject()
                writer.string("product_id", item.productId)
                writer.string("sku", item.sku)
                writer.string("name", item.name)
                writer.string("category", item.category)
                writer.integer("price_minor", item.priceMinor)
                writer.integer("quantity", item.quantity)
                writer.endObject()
            }
            writer.endArray()
            items = String(decoding: writer.bytes, as: UTF8.self)
        }
        let fields: [String?] = [
            e.site, e.eventUUID.uuidString.lowercased(), Timestamp.formatRFC3339(e.occurredAt), Timestamp.formatRFC3339(e.receivedAt), day,
            e.type.rawValue, e.name, e.action?.rawValue, e.eventId, e.origin.rawValue, e.anonymousId, e.userId,
            enriched.personId, enriched.sessionId.uuidString.lowercased(), context.source, context.medium, context.campaign,
            context.channel, context.referrerDomain ?? "(none)", context.landingPage ?? "(none)", e.url, e.referrer,
            e.revenue?.currency.code, e.revenue.map { String($0.amountMinor) }, e.properties,
            e.client?.browser, e.client?.os, e.client?.device, e.client?.isBot == true ? "t" : "f",
            e.order?.isFirstPurchase.map { $0 ? "t" : "f" }, items,
        ]
        var out: [UInt8] = []
        out.reserveCapacity(512)
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "\t")) }
            guard let field else {
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")])
                continue
            }
            FactRows.escape(field, into: &out)
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }
}

// MARK: - Python's random numbers

/// CPython's `random.Random` (MT19937, seeded from an integer as `random.seed(n)` does) and
/// the methods the traffic model calls, computed the same way, so a seed gives the same
/// sequence as in Python 3.
struct PythonRandom {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt64) {
        var key: [UInt32] = []
        var rest = seed
        repeat {
            key.append(UInt32(truncatingIfNeeded: rest))
            rest >>= 32
        } while rest > 0
        state[0] = 19_650_218
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
        var i = 1, j = 0
        for _ in 0..<max(624, key.count) {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_664_525)) &+ key[j] &+ UInt32(j)
            i += 1
            j += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<623 {
            state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
        }
        state[0] = 0x8000_0000
        index = 624
    }

    mutating func next32() -> UInt32 {
        if index >= 624 {
            func twist(_ k: Int, _ next: Int, _ far: Int) {
                let y = (state[k] & 0x8000_0000) | (state[next] & 0x7FFF_FFFF)
                state[k] = state[far] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_B0DF)
            }
            for k in 0..<(624 - 397) { twist(k, k + 1, k + 397) }
            for k in (624 - 397)..<623 { twist(k, k + 1, k + 397 - 624) }
            twist(623, 0, 396)
            index = 0
        }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// `getrandbits(k)` as 32-bit words, least significant first.
    mutating func getrandbits(_ k: Int) -> [UInt32] {
        if k <= 32 { return [next32() >> (32 - k)] }
        var words: [UInt32] = []
        var left = k
        while left > 0 {
            let r = next32()
            words.append(left < 32 ? r >> (32 - left) : r)
            left -= 32
        }
        return words
    }

    /// `f"{getrandbits(k):0{k // 4}x}"` (k a multiple of 4).
    mutating func hex(_ k: Int) -> String {
        let words = getrandbits(k)
        var text = ""
        for (index, word) in words.enumerated().reversed() {
            let width = index == words.count - 1 ? (k - 32 * index) / 4 : 8
            let digits = String(word, radix: 16)
            text += String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return text
    }

    /// `_randbelow(n)`: rejection sampling on `n.bit_length()` bits.
    mutating func below(_ n: Int) -> Int {
        let k = Int.bitWidth - n.leadingZeroBitCount
        var r = Int(getrandbits(k)[0])
        while r >= n { r = Int(getrandbits(k)[0]) }
        return r
    }

    mutating func randrange(_ start: Int, _ stop: Int) -> Int { start + below(stop - start) }

    mutating func choice<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func random() -> Double {
        let a = Double(next32() >> 5), b = Double(next32() >> 6)
        return (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `choices(population, weights)[0]`: the index.
    mutating func choicesIndex(cumulativeWeights: [Double]) -> Int {
        let x = random() * cumulativeWeights[cumulativeWeights.count - 1]
        var low = 0, high = cumulativeWeights.count - 1  // bisect_right(cum, x, 0, n - 1)
        while low < high {
            let middle = (low + high) / 2
            if x < cumulativeWeights[middle] { high = middle } else { low = middle + 1 }
        }
        return low
    }

    mutating func expovariate(_ lambda: Double) -> Double { -log(1.0 - random()) / lambda }

    mutating func normalvariate(_ mu: Double, _ sigma: Double) -> Double {
        let magic = 4 * exp(-0.5) / 2.0.squareRoot()
        var z: Double
        while true {
            let u1 = random()
            let u2 = 1.0 - random()
            z = magic * (u1 - 0.5) / u2
            if z * z / 4.0 <= -log(u2) { break }
        }
        return mu + z * sigma
    }

    mutating func lognormvariate(_ mu: Double, _ sigma: Double) -> Double { exp(normalvariate(mu, sigma)) }
}
