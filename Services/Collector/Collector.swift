import Contracts
import Crypto
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import Kafka
import Logging
import Metrics
import NIOCore
import Storage

public struct CollectorConfiguration: Sendable {
    /// Largest request body accepted. Default 512 KiB.
    public var maximumBodyBytes = 512 * 1024
    /// Most events in one batch. Default 500.
    public var maximumBatchEvents = 500
    /// Seconds a client is asked to wait when the broker is unreachable. Default 5.
    public var retryAfterSeconds = 5
    /// Events per second one site may send through this Collector (bursts of 2 s); 0 = no limit. Default 10 000.
    public var siteEventsPerSecond: Double = 10_000

    public init() {}
}

/// The ingestion front door: authenticates, validates and normalises events of every
/// accepted shape and answers 202 only after the broker acknowledged every one of them.
public struct Collector: Sendable {
    let configuration: CollectorConfiguration
    let producer: KafkaProducer
    let directory: SiteDirectory
    let idempotency: IdempotencyStore
    let rateLimiter: RateLimiter
    let logger: Logger
    let accepted = Counter(label: "tributary_collector_events_accepted_total")
    let refused = Counter(label: "tributary_collector_requests_refused_total")

    public init(configuration: CollectorConfiguration, producer: KafkaProducer, directory: SiteDirectory,
                idempotency: IdempotencyStore, logger: Logger) {
        self.configuration = configuration
        self.producer = producer
        self.directory = directory
        self.idempotency = idempotency
        self.rateLimiter = RateLimiter(eventsPerSecond: configuration.siteEventsPerSecond)
        self.logger = logger
    }

    /// Who is sending: a shop's server (its key names the site), a browser (public site id),
    /// or a payment processor (a signed webhook for the site in its path).
    enum Caller: Equatable {
        case server(site: String)
        case browser
        case processor(site: String)

        /// The site a server or processor is authenticated for; nil for a browser.
        var site: String? {
            switch self {
            case .server(let site), .processor(let site): site
            case .browser: nil
            }
        }

        var origin: Origin {
            switch self {
            case .server: .server
            case .browser: .browser
            case .processor: .processor
            }
        }
    }

    /// What an endpoint extracted from a request, in native event shape.
    struct Submission {
        var events: [JSONValue]
        var sentAt: Int64?
        /// Errors name the event's `index` only for batches.
        var isBatch: Bool
        /// A server key sent in the payload's own key field (`server_key`) rather than in a
        /// header, by the keyless endpoints; taken out of the payload, never stored.
        var serverKey: String? = nil
    }

    /// The payload's key field of the keyless endpoints.
    static let keyField = "server_key"

    /// The paths events are posted to, each also answering the CORS preflight (`OPTIONS`).
    /// `CollectorOpenAPITests` checks that the OpenAPI document describes each, both methods.
    static let eventPaths = ["/v1/events", "/api/events/server", "/v1/projects/:site/events", "/v1/track", "/v1/batch", "/api/track",
                             "/api/add_user_properties", "/watch/event"]

    public func addRoutes(to router: Router<some RequestContext>) {
        TrackerScript.addRoutes(to: router)
        CollectorOpenAPI.addRoutes(to: router)
        addWebhookRoutes(to: router)
        router.post("/v1/events") { request, context in
            try await respond(request, context: context, keyRequired: false) { body, _ in try self.nativeSubmission(body) }
        }
        router.post("/api/events/server") { request, context in
            try await respond(request, context: context, keyRequired: true) { body, _ in
                Submission(events: [try CompatibleShapes.serverEvent(try Self.json(body))], isBatch: false)
            }
        }
        router.post("/v1/projects/:site/events") { request, context in
            let site = try context.parameters.require("site")
            return try await respond(request, context: context, keyRequired: true) { body, _ in
                Submission(events: [try CompatibleShapes.projectEvent(try Self.json(body), site: site)], isBatch: false)
            }
        }
        router.post("/v1/track") { request, context in
            try await respond(request, context: context, keyRequired: true) { body, _ in
                Submission(events: [try CompatibleShapes.track(try Self.json(body))], isBatch: false)
            }
        }
        router.post("/v1/batch") { request, context in
            try await respond(request, context: context, keyRequired: true, maximumEvents: max(configuration.maximumBatchEvents, 1000)) { body, _ in
                let document = try Self.json(body)
                // `{"batch": […]}`, or `{"events": […]}` as some clients of this shape send.
                let field = document["batch"] == nil && document["events"] != nil ? "events" : "batch"
                guard let items = document[field]?.arrayValue, !items.isEmpty else {
                    throw APIError.invalid(.invalidBatch, "\(field) must be a non-empty array", field: field)
                }
                return Submission(events: try items.map { item throws(APIError) in try CompatibleShapes.track(item) },
                                  sentAt: try document["sentAt"].map { value throws(APIError) in try EventNormalizer.parseTimestamp(value) },
                                  isBatch: true)
            }
        }
        router.post("/api/track") { request, context in
            // Heap's bulk form takes up to 1,000 events.
            try await respond(request, context: context, keyRequired: false, maximumEvents: max(configuration.maximumBatchEvents, 1000)) { body, _ in
                var document = try Self.json(body)
                let key = Self.takeKey(from: &document)
                let events = try CompatibleShapes.appTrack(document)
                return Submission(events: events, isBatch: events.count > 1, serverKey: key)
            }
        }
        router.post("/api/add_user_properties") { request, context in
            // Heap's bulk form takes up to 1,000 events.
            try await respond(request, context: context, keyRequired: false, maximumEvents: max(configuration.maximumBatchEvents, 1000)) { body, _ in
                var document = try Self.json(body)
                let key = Self.takeKey(from: &document)
                let events = try CompatibleShapes.addUserProperties(document)
                return Submission(events: events, isBatch: events.count > 1, serverKey: key)
            }
        }
        router.post("/watch/event") { request, context in
            // Convead's clients take anything but 200 for a failure.
            try await respond(request, context: context, keyRequired: false, formAllowed: true, success: .ok) { body, request in
                // Fields come in the query, in a form body, or both.
                var form = FormEncoding.pairs(Substring(request.uri.query ?? ""))
                form += FormEncoding.pairs(Substring(String(buffer: body)))
                let key = form.first { $0.name == Self.keyField }?.value
                form.removeAll { $0.name == Self.keyField }
                return Submission(events: [try CompatibleShapes.watchEvent(form)], isBatch: false, serverKey: key)
            }
        }
        for path in Self.eventPaths {
            router.on(RouterPath(path), method: .options) { request, _ in
                Response(status: .noContent, headers: Self.corsHeaders(origin: request.headers[.origin], preflight: true))
            }
        }
    }

    /// Takes the key field out of a JSON payload.
    static func takeKey(from document: inout JSONValue) -> String? {
        guard var fields = document.objectValue, let key = fields.removeValue(forKey: keyField) else { return nil }
        document = .object(fields)
        return key.stringValue ?? ""
    }

    func nativeSubmission(_ body: ByteBuffer) throws(APIError) -> Submission {
        let document = try Self.json(body)
        guard let batch = document["batch"] else { return Submission(events: [document], isBatch: false) }
        guard let items = batch.arrayValue else { throw .invalid(.invalidBatch, "batch must be an array", field: "batch") }
        guard !items.isEmpty else { throw .invalid(.invalidBatch, "batch is empty", field: "batch") }
        var sentAt: Int64?
        if let sent = document["sent_at"], sent != .null {
            do { sentAt = try EventNormalizer.parseTimestamp(sent) } catch {
                throw .invalid(.invalidTimestamp, "sent_at must be RFC 3339 or epoch milliseconds", field: "sent_at")
            }
        }
        return Submission(events: items, sentAt: sentAt, isBatch: true)
    }

    static func json(_ body: ByteBuffer) throws(APIError) -> JSONValue {
        do { return try JSONValue.parse(body.readableBytesView) } catch { throw .invalid(.invalidJSON, "invalid JSON: \(error)") }
    }

    /// Reads and authenticates the request, lets `extract` turn it into native events, then
    /// accepts them; every refusal is the API's JSON error, with CORS headers for browsers.
    func respond(
        _ request: Request, context: some RequestContext, keyRequired: Bool, formAllowed: Bool = false,
        maximumEvents: Int? = nil, success: HTTPResponse.Status = .accepted,
        extract: (ByteBuffer, Request) throws -> Submission
    ) async throws -> Response {
        let origin = request.headers[.origin]
        do {
            let receivedAt = Int64(Date().timeIntervalSince1970 * 1000)
            let body = try await readBody(request, formAllowed: formAllowed)
            var caller = try await authenticate(request, keyRequired: keyRequired)
            let submission = try extract(body, request)
            // A key in the payload's own field makes a keyless endpoint's call a server call.
            if caller == .browser, let key = submission.serverKey { caller = try await serverCaller(key: key) }
            let limit = maximumEvents ?? configuration.maximumBatchEvents
            guard submission.events.count <= limit else {
                throw APIError(.contentTooLarge, .tooLarge, "a batch holds at most \(limit) events", field: "batch")
            }
            let count = try await accept(submission, caller: caller, request: request, body: body, receivedAt: receivedAt)
            accepted.increment(by: count)
            return JSONResponse.make(success, .object(["accepted": .number(String(count))]), headers: Self.corsHeaders(origin: origin, preflight: false))
        } catch var error as APIError {
            refused.increment()
            if error.status != .serviceUnavailable && error.status != .tooManyRequests && error.status != .conflict { error.retryAfter = nil }
            let response = try error.response(from: request, context: context)
            var headers = response.headers
            for field in Self.corsHeaders(origin: origin, preflight: false) { headers.append(field) }
            return Response(status: response.status, headers: headers, body: response.body)
        }
    }

    func readBody(_ request: Request, formAllowed: Bool) async throws(APIError) -> ByteBuffer {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        // sendBeacon can only send text/plain without a CORS preflight; accept it as JSON.
        let acceptable = contentType.isEmpty || contentType.hasPrefix("application/json") || contentType.hasPrefix("text/plain")
            || (formAllowed && contentType.hasPrefix("application/x-www-form-urlencoded"))
        guard acceptable else {
            throw APIError(.unsupportedMediaType, .unsupportedMediaType, formAllowed ? "send a form or JSON" : "send events as application/json")
        }
        do {
            return try await request.body.collect(upTo: configuration.maximumBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, .tooLarge, "the request body exceeds \(configuration.maximumBodyBytes) bytes")
        }
    }

    /// A bearer server key (or, for `/v1/track`-style clients, HTTP Basic with the key as user
    /// name) names the site; without one, the caller is a browser.
    func authenticate(_ request: Request, keyRequired: Bool) async throws(APIError) -> Caller {
        guard let header = request.headers[.authorization] else {
            if keyRequired { throw APIError(.unauthorized, .unauthorized, "this endpoint needs 'Authorization: Bearer <server key>'") }
            return .browser
        }
        guard let key = request.bearerToken ?? Self.basicUser(header) else {
            throw APIError(.unauthorized, .unauthorized, "use 'Authorization: Bearer <server key>'")
        }
        return try await serverCaller(key: key)
    }

    /// The site of a server key; 401 for an unknown one, 403 for a read key.
    func serverCaller(key: String) async throws(APIError) -> Caller {
        let resolved: (site: String, kind: KeyKind)?
        do { resolved = try await directory.resolve(key: key) } catch { throw unavailable("site directory") }
        guard let resolved else { throw APIError(.unauthorized, .unauthorized, "unknown or revoked key") }
        guard resolved.kind == .server else { throw APIError(.forbidden, .forbidden, "only a server key can send events; this is a \(resolved.kind.rawValue) key") }
        return .server(site: resolved.site)
    }

    static func basicUser(_ header: String) -> String? {
        guard header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8)
        else { return nil }
        let user = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return user.isEmpty ? nil : user
    }

    /// Normalises (atomically: one bad event refuses all), checks access and rate, honours
    /// `Idempotency-Key`, publishes and waits for the broker. Returns the number accepted.
    func accept(_ submission: Submission, caller: Caller, request: Request, body: ByteBuffer, receivedAt: Int64,
                idempotencyKey: String? = nil) async throws(APIError) -> Int {
        var randomness = SystemRandomNumberGenerator()
        let (currencies, platforms) = try await siteSettings(submission, caller: caller)
        let shopper = Shopper(userAgent: request.headers[.userAgent], ipAddress: Self.clientAddress(request.headers))
        var events = try normalize(submission, caller: caller, receivedAt: receivedAt, idSeed: randomness.next(),
                                   shopper: shopper, defaultCurrencies: currencies, forwardingPlatforms: platforms)
        if caller == .browser { try await checkBrowserAccess(events, origin: request.headers[.origin]) }
        for (site, count) in Dictionary(grouping: events, by: \.site).mapValues(\.count) {
            if let wait = rateLimiter.retryAfter(site: site, events: count) {
                var error = APIError(.tooManyRequests, .rateLimited, "site '\(site)' is sending faster than \(Int(configuration.siteEventsPerSecond)) events/s")
                error.retryAfter = wait
                throw error
            }
        }
        guard let key = idempotencyKey ?? request.headers[.idempotencyKey], !key.isEmpty else {
            try await publish(events)
            return events.count
        }
        // One key, one site: the first event's (a server key allows only its own site anyway).
        let site = events[0].site
        let hash = IdempotencyStore.requestHash(Array(request.uri.path.utf8), body.readableBytesView.map { $0 })
        let claim: IdempotencyStore.Claim
        do { claim = try await idempotency.claim(site: site, key: key, requestHash: hash, receivedAt: receivedAt) } catch {
            throw unavailable("idempotency store")
        }
        switch claim {
        case .replay(let count):
            return count
        case .mismatch where caller.origin == .processor:
            // A processor's redelivery whose bytes differ (re-serialised): the delivery id is
            // the processor's own, so it was recorded.
            return events.count
        case .mismatch:
            throw APIError(.unprocessableContent, .idempotencyMismatch, "Idempotency-Key '\(key)' was already used for a different request")
        case .inProgress:
            var error = APIError(.conflict, .conflict, "a request with this Idempotency-Key is being processed; retry shortly")
            error.retryAfter = 1
            throw error
        case .publish(let originalReceivedAt):
            // Ids derived from the key and the first attempt's reception time: a retry
            // republishes the very same events, which every consumer downstream deduplicates.
            events = try normalize(submission, caller: caller, receivedAt: originalReceivedAt,
                                   idSeed: Self.seed(site: site, key: key), shopper: shopper,
                                   defaultCurrencies: currencies, forwardingPlatforms: platforms)
            do {
                try await publish(events)
            } catch {
                try? await idempotency.fail(site: site, key: key)
                throw error
            }
            do { try await idempotency.complete(site: site, key: key, accepted: events.count) } catch {
                // Published but not recorded: a retry will republish identical events (deduplicated downstream).
                logger.warning("idempotency key \(key) of site \(site) not marked done: \(error)")
            }
            return events.count
        }
    }

    /// Event ids come from one generator per request seeded with `idSeed` (one system random
    /// draw per request, not two per event).
    func normalize(_ submission: Submission, caller: Caller, receivedAt: Int64, idSeed: UInt64, shopper: Shopper,
                   defaultCurrencies: [String: Currency] = [:], forwardingPlatforms: [String: Set<AdPlatform>] = [:]) throws(APIError) -> [RawEvent] {
        let site = caller.site
        var normalizer = EventNormalizer(receivedAt: receivedAt, authenticatedSite: site, origin: caller.origin, sentAt: submission.sentAt)
        normalizer.defaultCurrencies = defaultCurrencies
        normalizer.forwardingPlatforms = forwardingPlatforms
        // Browsers send their own user agent; a server's is its HTTP library, not the shopper's.
        let client = site == nil ? UserAgent.classify(shopper.userAgent) : nil
        if site == nil {
            normalizer.browserUserAgent = shopper.userAgent
            normalizer.browserIPAddress = shopper.ipAddress
        }
        var ids = SeededGenerator(seed: idSeed)
        var events: [RawEvent] = []
        var errors: [APIError] = []
        for (index, item) in submission.events.enumerated() {
            do {
                var event = try normalizer.normalize(item, eventUUID: EventID.uuidV7(millis: receivedAt, using: &ids))
                event.client = client
                events.append(event)
            } catch {
                var indexed = error
                indexed.index = submission.isBatch ? index : nil
                errors.append(indexed)
            }
        }
        guard let first = errors.first else { return events }
        guard submission.isBatch else { throw first }
        var batchError = APIError(first.status, first.code, "\(errors.count) of \(submission.events.count) events are invalid; nothing was accepted: \(first.message)", field: first.field, index: first.index)
        batchError.details = errors
        throw batchError
    }

    func publish(_ events: [RawEvent]) async throws(APIError) {
        do {
            let messages = events.map { KafkaOutgoingMessage(topic: Topics.raw, key: $0.partitionKey, value: MessageCoding.encode($0)) }
            try await producer.send(messages)
        } catch {
            logger.warning("collector could not publish \(events.count) events: \(error)")
            throw unavailable("the event broker")
        }
    }

    /// The request's sender as the ad platforms want to know it: its user agent, and its IP
    /// address as the proxy in front of the Collector reports it (`X-Forwarded-For`'s first
    /// address, else `X-Real-IP`).
    struct Shopper {
        var userAgent: String?
        var ipAddress: String?
    }

    static func clientAddress(_ headers: HTTPFields) -> String? {
        let forwarded = headers[HTTPField.Name("X-Forwarded-For")!]?.split(separator: ",").first
        let address = (forwarded.map(String.init) ?? headers[HTTPField.Name("X-Real-IP")!])?.trimmingCharacters(in: .whitespaces)
        return address?.isEmpty == false ? address : nil
    }

    /// For each site the submission's events belong to (the key's site, or the sites browser
    /// events name): its default currency if it has one, and the ad platforms it forwards to.
    func siteSettings(_ submission: Submission, caller: Caller) async throws(APIError) -> (currencies: [String: Currency], platforms: [String: Set<AdPlatform>]) {
        let sites: Set<String> = if let site = caller.site { [site] } else {
            Set(submission.events.compactMap { $0["site"]?.stringValue })
        }
        var currencies: [String: Currency] = [:]
        var platforms: [String: Set<AdPlatform>] = [:]
        for id in sites {
            let site: Site?
            do {
                site = try await directory.site(id)
                platforms[id] = try await directory.forwardingPlatforms(site: id)
            } catch { throw unavailable("site directory") }
            if let code = site?.defaultCurrency, let currency = Currency(code: code) { currencies[id] = currency }
        }
        return (currencies, platforms)
    }

    /// Browser events name their site, which must exist and allow the page's origin.
    func checkBrowserAccess(_ events: [RawEvent], origin: String?) async throws(APIError) {
        for siteId in Set(events.map(\.site)) {
            let site: Site?
            do { site = try await directory.site(siteId) } catch { throw unavailable("site directory") }
            guard let site else { throw APIError(.notFound, .unknownSite, "site '\(siteId)' does not exist", field: "site") }
            // An empty allow-list accepts any origin (convenient for a first installation).
            if let origin, !site.allowedOrigins.isEmpty, !site.allowedOrigins.contains(origin) {
                throw APIError(.forbidden, .forbidden, "origin '\(origin)' is not allowed for site '\(siteId)'")
            }
        }
    }

    func unavailable(_ what: String) -> APIError {
        var error = APIError(.serviceUnavailable, .unavailable, "\(what) is unreachable; retry later")
        error.retryAfter = configuration.retryAfterSeconds
        return error
    }

    static func seed(site: String, key: String) -> UInt64 {
        let digest = Array(SHA256.hash(data: Data((site + "\u{1F}" + key).utf8)))
        return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func corsHeaders(origin: String?, preflight: Bool) -> HTTPFields {
        guard let origin else { return [:] }
        // Retry-After must be readable by the tracker's fetch to honour it.
        var headers: HTTPFields = [.accessControlAllowOrigin: origin, .vary: "Origin", .accessControlExposeHeaders: "Retry-After"]
        if preflight {
            headers[.accessControlAllowMethods] = "POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "Content-Type, Authorization, Idempotency-Key"
            headers[.accessControlMaxAge] = "86400"
        }
        return headers
    }
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}
