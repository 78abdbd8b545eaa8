import Contracts
import HTTPAPI
import Foundation
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

    public init() {}
}

/// The ingestion front door: authenticates, validates and normalises events and answers 202
/// only after the broker acknowledged every one of them.
public struct Collector: Sendable {
    let configuration: CollectorConfiguration
    let producer: KafkaProducer
    let directory: SiteDirectory
    let logger: Logger
    let accepted = Counter(label: "tributary_collector_events_accepted_total")
    let refused = Counter(label: "tributary_collector_requests_refused_total")

    public init(configuration: CollectorConfiguration, producer: KafkaProducer, directory: SiteDirectory, logger: Logger) {
        self.configuration = configuration
        self.producer = producer
        self.directory = directory
        self.logger = logger
    }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.post("/v1/events") { request, context in
            try await self.ingest(request, context: context)
        }
        router.on("/v1/events", method: .options) { request, _ in
            Response(status: .noContent, headers: Self.corsHeaders(origin: request.headers[.origin], preflight: true))
        }
    }

    func ingest(_ request: Request, context: some RequestContext) async throws -> Response {
        do {
            let receivedAt = Int64(Date().timeIntervalSince1970 * 1000)
            let (events, isBrowser) = try await parse(request, context: context, receivedAt: receivedAt)
            if isBrowser { try await checkBrowserAccess(events, origin: request.headers[.origin]) }
            do {
                try await producer.send(try events.map {
                    KafkaOutgoingMessage(topic: Topics.raw, key: $0.partitionKey, value: try MessageCoding.encode($0))
                })
            } catch let error as KafkaError {
                logger.warning("collector could not publish \(events.count) events: \(error)")
                var unavailable = APIError(.serviceUnavailable, .unavailable, "the event broker is unreachable; retry later")
                unavailable.retryAfter = configuration.retryAfterSeconds
                throw unavailable
            }
            accepted.increment(by: events.count)
            var headers = Self.corsHeaders(origin: request.headers[.origin], preflight: false)
            headers[.contentType] = "application/json"
            return Response(status: .accepted, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{\"accepted\":\(events.count)}")))
        } catch var error as APIError {
            refused.increment()
            if error.status != .serviceUnavailable { error.retryAfter = nil }
            let response = try error.response(from: request, context: context)
            var headers = response.headers
            for field in Self.corsHeaders(origin: request.headers[.origin], preflight: false) { headers.append(field) }
            return Response(status: response.status, headers: headers, body: response.body)
        }
    }

    /// Reads, authenticates and normalises the request's events; atomic for batches.
    func parse(_ request: Request, context: some RequestContext, receivedAt: Int64) async throws(APIError) -> ([RawEvent], isBrowser: Bool) {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        // sendBeacon can only send text/plain without a CORS preflight; accept it as JSON.
        guard contentType.hasPrefix("application/json") || contentType.hasPrefix("text/plain") || contentType.isEmpty else {
            throw APIError(.unsupportedMediaType, .unsupportedMediaType, "send events as application/json")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, .tooLarge, "the request body exceeds \(configuration.maximumBodyBytes) bytes")
        }
        let document: JSONValue
        do {
            document = try JSONValue.parse(body.readableBytesView)
        } catch {
            throw .invalid(.invalidJSON, "invalid JSON: \(error)")
        }

        var authenticatedSite: String?
        if request.headers[.authorization] != nil {
            guard let key = request.bearerToken else {
                throw APIError(.unauthorized, .unauthorized, "use 'Authorization: Bearer <server key>'")
            }
            let resolved: (site: String, kind: KeyKind)?
            do { resolved = try await directory.resolve(key: key) } catch { throw unavailable() }
            guard let resolved else { throw APIError(.unauthorized, .unauthorized, "unknown or revoked key") }
            guard resolved.kind == .server else { throw APIError(.forbidden, .forbidden, "a read key cannot send events") }
            authenticatedSite = resolved.site
        }

        var items: [JSONValue]
        var sentAt: Int64?
        if let batch = document["batch"] {
            guard let array = batch.arrayValue else { throw .invalid(.invalidBatch, "batch must be an array", field: "batch") }
            guard !array.isEmpty else { throw .invalid(.invalidBatch, "batch is empty", field: "batch") }
            guard array.count <= configuration.maximumBatchEvents else {
                throw APIError(.contentTooLarge, .tooLarge, "a batch holds at most \(configuration.maximumBatchEvents) events", field: "batch")
            }
            items = array
            if let sent = document["sent_at"], sent != .null {
                do { sentAt = try EventNormalizer.parseTimestamp(sent) } catch {
                    throw .invalid(.invalidTimestamp, "sent_at must be RFC 3339 or epoch milliseconds", field: "sent_at")
                }
            }
        } else {
            items = [document]
        }
        let normalizer = EventNormalizer(
            receivedAt: receivedAt, authenticatedSite: authenticatedSite,
            origin: authenticatedSite == nil ? .browser : .server, sentAt: sentAt)
        var events: [RawEvent] = []
        var errors: [APIError] = []
        for (index, item) in items.enumerated() {
            do {
                events.append(try normalizer.normalize(item))
            } catch {
                var indexed = error
                indexed.index = index
                errors.append(indexed)
            }
        }
        if let first = errors.first {
            if errors.count == 1 && items.count == 1 && document["batch"] == nil {
                var single = first
                single.index = nil
                throw single
            }
            var batchError = APIError(first.status, first.code, "\(errors.count) of \(items.count) events are invalid; nothing was accepted: \(first.message)", field: first.field, index: first.index)
            batchError.details = errors
            throw batchError
        }
        return (events, authenticatedSite == nil)
    }

    /// Browser events name their site, which must exist and allow the page's origin.
    func checkBrowserAccess(_ events: [RawEvent], origin: String?) async throws(APIError) {
        for siteId in Set(events.map(\.site)) {
            let site: Site?
            do { site = try await directory.site(siteId) } catch { throw unavailable() }
            guard let site else { throw APIError(.notFound, .unknownSite, "site '\(siteId)' does not exist", field: "site") }
            // An empty allow-list accepts any origin (convenient for a first installation).
            if let origin, !site.allowedOrigins.isEmpty, !site.allowedOrigins.contains(origin) {
                throw APIError(.forbidden, .forbidden, "origin '\(origin)' is not allowed for site '\(siteId)'")
            }
        }
    }

    func unavailable() -> APIError {
        var error = APIError(.serviceUnavailable, .unavailable, "site directory unreachable; retry later")
        error.retryAfter = configuration.retryAfterSeconds
        return error
    }

    static func corsHeaders(origin: String?, preflight: Bool) -> HTTPFields {
        guard let origin else { return [:] }
        var headers: HTTPFields = [.accessControlAllowOrigin: origin, .vary: "Origin"]
        if preflight {
            headers[.accessControlAllowMethods] = "POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "Content-Type, Authorization, Idempotency-Key"
            headers[.accessControlMaxAge] = "86400"
        }
        return headers
    }
}
