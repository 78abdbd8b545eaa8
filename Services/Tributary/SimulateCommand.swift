import ArgumentParser
import Collector
import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOHTTP1

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a simulated shop's traffic to the Collector and write the exact expected report figures.",
        discussion: """
            Creates (or re-keys) the site through the QueryAPI's admin endpoint, posts every
            visitor's events in order — browser batches without a key, server purchases with the
            server key — retrying while the Collector is unavailable, and writes the ground truth
            (orders and revenue per source, medium, campaign and currency) as JSON.
            """)

    @Option(help: "Collector base URL.") var collector = "http://127.0.0.1:" + env("TRIBUTARY_COLLECTOR_PORT", "8080")
    @Option(help: "QueryAPI base URL (to create the site).") var queryAPI = "http://127.0.0.1:" + env("TRIBUTARY_QUERY_PORT", "8081")
    @Option(help: "Admin token (env TRIBUTARY_ADMIN_TOKEN).") var adminToken = env("TRIBUTARY_ADMIN_TOKEN", "")
    @Option(help: "Site id to create or reuse.") var site = "sim-shop"
    @Option(help: "Number of visitors.") var visitors = 300
    @Option(help: "Days of history the traffic spans, ending an hour ago.") var days = 7
    @Option(help: "Random seed: the same seed sends the same traffic.") var seed: UInt64 = 42
    @Option(help: "Concurrent visitors in flight.") var concurrency = 16
    @Option(help: "Where to write the expected figures.") var expected = "simulation-expected.json"
    @Option(help: "Give up on a request after retrying this many seconds.") var retrySeconds = 180
    @Option(help: "The traffic's clock: Unix milliseconds it ends an hour before (default: now). Same seed and time, same traffic.")
    var now: Int64?
    @Option(help: ArgumentHelp("A JSON file of ad platform destinations to set on the site before the traffic: {\"meta\": {…}, \"google-ads\": {…}}, each the body of PUT /v1/admin/sites/{site}/destinations/{platform}.",
                               valueName: "file"))
    var destinations: String?
    @Flag(help: "Make every order one the ad platforms can take (native endpoints only, consent, email and user agent, no Stripe, no refunds), so that what they receive equals the ground truth.")
    var forwardable = false

    func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await simulate(client)
            try await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func simulate(_ client: HTTPClient) async throws {
        let serverKey = try await createSite(client)
        let stripe = forwardable ? false : try await connectStripe(client)
        if let destinations { try await setDestinations(client, file: destinations) }
        let now = self.now ?? Int64(Date().timeIntervalSince1970 * 1000)
        let traffic = ShopTraffic(site: site, visitorCount: visitors, days: days, seed: seed, now: now, stripe: stripe, forwardable: forwardable)
        let totalEvents = traffic.visitors.flatMap(\.posts).map(\.eventCount).reduce(0, +)
        log("simulate: \(traffic.visitors.count) visitors, \(totalEvents) events to \(collector)")
        let started = Date()
        let progress = Progress(total: traffic.visitors.count)
        let answers = Answers()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func startNext() {
                guard next < traffic.visitors.count else { return }
                let visitor = traffic.visitors[next]
                let visitorIndex = next
                next += 1
                group.addTask {
                    // One visitor's posts go strictly in order: that is how a browser sends them.
                    for (index, post) in visitor.posts.enumerated() {
                        try await self.send(post, key: "sim-\(self.site)-\(self.seed)-\(now)-\(visitorIndex)-\(index)", serverKey: serverKey,
                                            client: client, answers: answers)
                    }
                }
            }
            for _ in 0..<max(1, concurrency) { startNext() }
            while try await group.next() != nil {
                if let line = await progress.advance() { log(line) }
                startNext()
            }
        }
        let seconds = Date().timeIntervalSince(started)
        log(String(format: "simulate: sent %d events in %.1f s (%.0f events/s)", totalEvents, seconds, Double(totalEvents) / max(seconds, 0.001)))
        log("simulate: \(await answers.summary)")
        try Data(traffic.expectedJSON(site: site).serialized.utf8).write(to: URL(fileURLWithPath: expected))
        log("simulate: expected figures written to \(expected)")
    }

    /// Posts one request, retrying on 409/429/503 and connection failures; any other refusal is a bug.
    /// Like the tracker, every post carries an `Idempotency-Key`: a retry after an answer that
    /// never came (the Collector killed mid-request) is stored once, events without ids too.
    func send(_ post: ShopTraffic.Post, key: String, serverKey: String, client: HTTPClient, answers: Answers) async throws {
        let path = post.isStripe ? "/v1/webhooks/stripe/\(site)" : post.watchForm == nil ? post.path : "/watch/event"
        var request = HTTPClientRequest(url: collector + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: post.watchForm == nil ? "application/json" : "application/x-www-form-urlencoded")
        request.headers.add(name: "Idempotency-Key", value: key)
        if post.isServer {
            request.headers.add(name: "Authorization", value: "Bearer \(serverKey)")
        } else if !post.isStripe {
            request.headers.add(name: "Origin", value: "https://shop.example")
            request.headers.add(name: "User-Agent", value: ShopTraffic.browserUserAgent)
        }
        let body = post.watchForm ?? post.body.serialized
        let deadline = Date().addingTimeInterval(TimeInterval(retrySeconds))
        while true {
            request.body = .bytes(ByteBuffer(string: body))
            if post.isStripe {
                // Signed now, as Stripe signs each delivery attempt.
                request.headers.replaceOrAdd(name: "Stripe-Signature", value: WebhookSignature.stripeHeader(
                    timestamp: Int64(Date().timeIntervalSince1970), body: Array(body.utf8), secrets: [stripeSecret]))
            }
            do {
                let response = try await client.execute(request, timeout: .seconds(30))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                await answers.count(response.status.code, events: post.eventCount)
                // Convead's endpoint answers 200 as Convead does; every other 202.
                if response.status == .accepted || ((post.watchForm != nil || post.isStripe) && response.status == .ok) { return }
                // 409: the same key is in flight still (or was, in a Collector that died: its claim expires).
                guard [.serviceUnavailable, .tooManyRequests, .conflict].contains(response.status) else {
                    throw ValidationError("the Collector refused a simulated request with \(response.status.code): \(text)")
                }
            } catch let error as ValidationError {
                throw error
            } catch {
                // Connection refused or reset: the Collector is restarting. Retry.
                await answers.count(nil, events: post.eventCount)
            }
            guard Date() < deadline else { throw ValidationError("the Collector stayed unavailable for \(retrySeconds) s") }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// The simulated shop's Stripe webhook signing secret.
    var stripeSecret: String { "whsec_simulated_\(site)_\(seed)" }

    /// Sets up the site's Stripe integration; false (and the traffic has no Stripe share) when
    /// the QueryAPI cannot store secrets because TRIBUTARY_SECRET_KEY is not set.
    func connectStripe(_ client: HTTPClient) async throws -> Bool {
        let (status, body) = try await call(client, "PUT", "/v1/admin/sites/\(site)/integrations/stripe",
                                            body: .object(["webhook_secret": .string(stripeSecret)]))
        switch status {
        case 204: return true
        case 503:
            log("simulate: no Stripe share: the QueryAPI cannot store webhook secrets (\(body["error"]?["message"]?.stringValue ?? "503"))")
            return false
        default: throw ValidationError("could not set up the Stripe integration of '\(site)': \(status) \(body.serialized)")
        }
    }

    func setDestinations(_ client: HTTPClient, file: String) async throws {
        let document = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        for (platform, body) in (document.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            let (status, answer) = try await call(client, "PUT", "/v1/admin/sites/\(site)/destinations/\(platform)", body: body)
            guard status == 200 || status == 201 else {
                throw ValidationError("could not set the \(platform) destination of '\(site)': \(status) \(answer.serialized)")
            }
            log("simulate: the site forwards to \(platform)")
        }
    }

    /// Creates the site, or rotates its keys if it exists; returns the server key.
    func createSite(_ client: HTTPClient) async throws -> String {
        let definition: JSONValue = .object([
            "id": .string(site), "name": .string("Simulated shop"), "timezone": .string("UTC"),
            "allowed_origins": .array([.string("https://shop.example")]),
            // Convead's orders come without a currency.
            "default_currency": .string("EUR"),
        ])
        var (status, body) = try await call(client, "POST", "/v1/admin/sites", body: definition)
        if status == 409 {
            _ = try await call(client, "PATCH", "/v1/admin/sites/\(site)", body: .object(["default_currency": .string("EUR")]))
            (status, body) = try await call(client, "POST", "/v1/admin/sites/\(site)/keys", body: nil)
        }
        guard status == 201, let key = body["server_key"]?.stringValue else {
            throw ValidationError("could not create site '\(site)' at \(queryAPI): \(status) \(body.serialized)")
        }
        return key
    }

    func call(_ client: HTTPClient, _ method: String, _ path: String, body: JSONValue?) async throws -> (Int, JSONValue) {
        try await adminCall(client, base: queryAPI, token: adminToken, method: method, path: path, body: body)
    }

    func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
}

/// What the Collector answered: requests per status, the events it accepted, and requests
/// that got no answer (connection refused or reset).
actor Answers {
    private var byStatus: [UInt: Int] = [:]
    private var acceptedEvents: [UInt: Int] = [:]
    private var unanswered = 0

    func count(_ status: UInt?, events: Int) {
        guard let status else { unanswered += 1; return }
        byStatus[status, default: 0] += 1
        if status == 200 || status == 202 { acceptedEvents[status, default: 0] += events }
    }

    /// `answers 200: 40 requests (40 events), 202: 1200 requests (5400 events), 503: 3; no answer: 2`
    /// (200: Convead's endpoint, which answers as Convead does).
    var summary: String {
        let statuses = byStatus.keys.sorted().map { status in
            acceptedEvents[status].map { "\(status): \(byStatus[status]!) requests (\($0) events)" } ?? "\(status): \(byStatus[status]!)"
        }
        return "answers " + statuses.joined(separator: ", ") + "; no answer: \(unanswered)"
    }
}

/// Counts finished visitors and reports every tenth of the way.
actor Progress {
    let total: Int
    var done = 0
    init(total: Int) { self.total = total }

    func advance() -> String? {
        done += 1
        let step = max(1, total / 10)
        return done % step == 0 || done == total ? "simulate: \(done)/\(total) visitors sent" : nil
    }
}

/// An authenticated JSON call to the QueryAPI; returns status and parsed body.
func adminCall(_ client: HTTPClient, base: String, token: String, method: String, path: String, body: JSONValue?) async throws -> (Int, JSONValue) {
    var request = HTTPClientRequest(url: base + path)
    request.method = HTTPMethod(rawValue: method)
    request.headers.add(name: "Authorization", value: "Bearer \(token)")
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body.serialized))
    }
    let response = try await client.execute(request, timeout: .seconds(30))
    let bytes = try await response.body.collect(upTo: 16 << 20)
    let parsed = (try? JSONValue.parse(bytes.readableBytesView)) ?? .null
    return (Int(response.status.code), parsed)
}
