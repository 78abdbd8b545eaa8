import Contracts
import Foundation
import HTTPAPI
import HTTPTypes
import Hummingbird
import NIOCore
import Storage

/// `POST /v1/webhooks/stripe/{site}` and `POST /v1/webhooks/shopify/{site}`: the payment
/// processor's own record of paid orders, refunds and chargebacks, as origin `processor`
/// (whose money wins over the shop's server and the browser for the same order).
///
/// The signature is checked over the raw bytes before anything is parsed. Processors deliver
/// at least once and out of order: the delivery's id (Stripe's `event.id`, Shopify's
/// `X-Shopify-Webhook-Id`) is the request's idempotency key, so a redelivery republishes the
/// very same events (deduplicated downstream) or is answered from the record. 200 only after
/// the broker acknowledged every event.
extension Collector {
    /// Processors send whole orders; a large one exceeds what an event batch may weigh.
    static let maximumWebhookBytes = 4 * 1024 * 1024

    func addWebhookRoutes(to router: Router<some RequestContext>) {
        for processor in Processor.allCases {
            router.post(RouterPath("/v1/webhooks/\(processor.rawValue)/:site")) { request, context in
                let site = try context.parameters.require("site")
                return try await self.receiveWebhook(request, context: context, processor: processor, site: site)
            }
        }
    }

    func receiveWebhook(_ request: Request, context: some RequestContext, processor: Processor, site: String) async throws -> Response {
        do {
            let receivedAt = Int64(Date().timeIntervalSince1970 * 1000)
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: Self.maximumWebhookBytes) } catch {
                throw APIError(.contentTooLarge, .tooLarge, "the request body exceeds \(Self.maximumWebhookBytes) bytes")
            }
            let integration = try await webhookIntegration(site: site, processor: processor)
            let bytes = Array(body.readableBytesView)
            let deliveryId: String
            let events: [JSONValue]
            switch processor {
            case .stripe:
                try WebhookSignature.verifyStripe(header: request.headers[.stripeSignature], body: bytes, secrets: integration.secrets,
                                                  now: receivedAt / 1000)
                let event = try Self.json(body)
                guard let id = event["id"]?.stringValue, !id.isEmpty else {
                    throw APIError.invalid(.missingField, "a Stripe event has an id", field: "id")
                }
                deliveryId = id
                events = try StripeEvents.events(event, orderIdField: StripeOrderId(rawValue: integration.orderIdField) ?? .metadataOrderId)
            case .shopify:
                try WebhookSignature.verifyShopify(header: request.headers[.shopifyHmac], body: bytes, secrets: integration.secrets)
                guard let topic = request.headers[.shopifyTopic], !topic.isEmpty else {
                    throw APIError.invalid(.missingField, "a Shopify webhook names its topic in X-Shopify-Topic", field: "X-Shopify-Topic")
                }
                // Every delivery of one webhook carries the same X-Shopify-Webhook-Id.
                deliveryId = request.headers[.shopifyWebhookId] ?? IdempotencyStore.requestHash(Array(topic.utf8), bytes)
                events = try ShopifyEvents.events(topic: topic, try Self.json(body),
                                                  orderIdField: ShopifyOrderId(rawValue: integration.orderIdField) ?? .id)
            }
            // A type we do not record (a processor sends many): acknowledged, so it is not retried.
            guard !events.isEmpty else { return JSONResponse.make(.ok, .object(["accepted": .number("0")])) }
            let submission = Submission(events: events, isBatch: events.count > 1)
            let count = try await accept(submission, caller: .processor(site: site), request: request, body: body, receivedAt: receivedAt,
                                         idempotencyKey: "\(processor.rawValue):\(deliveryId)")
            accepted.increment(by: count)
            logger.info("\(processor.rawValue) webhook \(deliveryId) of site \(site): \(count) events")
            return JSONResponse.make(.ok, .object(["accepted": .number(String(count))]))
        } catch var error as APIError {
            refused.increment()
            if error.status != .serviceUnavailable && error.status != .conflict { error.retryAfter = nil }
            if error.status == .unauthorized { logger.notice("\(processor.rawValue) webhook for site \(site) refused: \(error.message)") }
            return try error.response(from: request, context: context)
        }
    }

    /// The site's integration; 404 when it has none (the processor retries, and the shop sees
    /// the failures in its processor's dashboard).
    func webhookIntegration(site: String, processor: Processor) async throws(APIError) -> IntegrationSecrets {
        let integration: IntegrationSecrets?
        do { integration = try await directory.integration(site: site, processor: processor) } catch {
            throw unavailable("site directory")
        }
        guard let integration, !integration.secrets.isEmpty else {
            throw APIError(.notFound, .notFound, "site '\(site)' has no \(processor.rawValue) integration")
        }
        return integration
    }
}

extension HTTPField.Name {
    static let stripeSignature = HTTPField.Name("Stripe-Signature")!
    static let shopifyHmac = HTTPField.Name("X-Shopify-Hmac-Sha256")!
    static let shopifyTopic = HTTPField.Name("X-Shopify-Topic")!
    static let shopifyWebhookId = HTTPField.Name("X-Shopify-Webhook-Id")!
}
