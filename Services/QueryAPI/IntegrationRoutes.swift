import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import Storage

/// `PUT|GET|DELETE /v1/admin/sites/{site}/integrations/stripe|shopify`: a site's payment
/// processor webhooks. Secrets are write-only: sealed at rest (`SecretBox`), never returned,
/// never logged; `GET` shows which are set (their ids and when they were added).
extension QueryAPI {
    func addIntegrationRoutes(to router: Router<some RequestContext>) {
        let path = "/v1/admin/sites/:site/integrations/:processor"
        router.put(RouterPath(path)) { request, context in
            try await handle(request) { try await self.putIntegration(request, context: context) }
        }
        router.get(RouterPath(path)) { request, context in
            try await handle(request) {
                let (site, processor) = try await self.integrationTarget(request, context: context)
                guard let info = try await IntegrationStore(client: self.postgres, logger: self.logger).info(site: site, processor: processor) else {
                    throw APIError(.notFound, .notFound, "site '\(site)' has no \(processor.rawValue) integration")
                }
                return JSONResponse.ok(Self.integrationJSON(info, site: site))
            }
        }
        router.delete(RouterPath(path)) { request, context in
            try await handle(request) {
                let (site, processor) = try await self.integrationTarget(request, context: context)
                guard try await IntegrationStore(client: self.postgres, logger: self.logger).delete(site: site, processor: processor) else {
                    throw APIError(.notFound, .notFound, "site '\(site)' has no \(processor.rawValue) integration")
                }
                self.logger.info("removed the \(processor.rawValue) integration of site \(site)")
                return Response(status: .noContent)
            }
        }
        router.delete(RouterPath(path + "/secrets/:secret")) { request, context in
            try await handle(request) {
                let (site, processor) = try await self.integrationTarget(request, context: context)
                guard let id = Int(try context.parameters.require("secret")) else {
                    throw APIError(.notFound, .notFound, "no such secret")
                }
                guard try await IntegrationStore(client: self.postgres, logger: self.logger).dropSecret(site: site, processor: processor, id: id) else {
                    throw APIError(.notFound, .notFound, "no secret \(id) of \(processor.rawValue) for site '\(site)' that is not its last")
                }
                self.logger.info("dropped webhook secret \(id) of the \(processor.rawValue) integration of site \(site)")
                return Response(status: .noContent)
            }
        }
    }

    /// The site and processor of an integration route, for the site's owner key or the admin token.
    func integrationTarget(_ request: Request, context: some RequestContext) async throws -> (String, Processor) {
        let site = try await authorizeOwner(request, site: try context.parameters.require("site")).id
        let name = try context.parameters.require("processor")
        guard let processor = Processor(rawValue: name) else {
            throw APIError(.notFound, .notFound, "no integration '\(name)'; there are \(Processor.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return (site, processor)
    }

    /// `PUT …/integrations/{processor}` `{"webhook_secret": "…", "rotate": false,
    /// "order_id_field": "…"}` → 204. `rotate: true` adds the secret beside the current one
    /// (both verify until the old one is dropped with `DELETE …/secrets/{id}`); 409 when two
    /// are set already.
    func putIntegration(_ request: Request, context: some RequestContext) async throws -> Response {
        let (site, processor) = try await integrationTarget(request, context: context)
        let document = try await Self.body(request)
        guard let fields = document.objectValue else { throw APIError.invalid(.invalidJSON, "send a JSON object") }
        for name in fields.keys where !["webhook_secret", "rotate", "order_id_field"].contains(name) {
            throw APIError.invalid(.invalidParameter, "unknown field '\(name)'", field: name)
        }
        var secret: String?
        if let value = fields["webhook_secret"] {
            guard let text = value.stringValue, !text.isEmpty, text.utf8.count <= 512, Self.isStorable(text) else {
                throw APIError.invalid(.invalidParameter, "webhook_secret must be a non-empty string", field: "webhook_secret")
            }
            secret = text
        }
        var rotate = false
        if let value = fields["rotate"] {
            guard let flag = value.boolValue else { throw APIError.invalid(.invalidParameter, "rotate must be true or false", field: "rotate") }
            rotate = flag
        }
        var orderIdField: String?
        if let value = fields["order_id_field"] {
            guard let field = value.stringValue, processor.orderIdFields.contains(field) else {
                throw APIError.invalid(.invalidParameter, "order_id_field of \(processor.rawValue) is one of \(processor.orderIdFields.joined(separator: ", "))",
                                       field: "order_id_field")
            }
            orderIdField = field
        }
        guard let box = configuration.secretBox else {
            throw APIError(.serviceUnavailable, .unavailable,
                           "set \(SecretBox.environmentVariable) (at least \(SecretBox.minimumKeyLength) characters) to store webhook secrets")
        }
        do {
            try await IntegrationStore(client: postgres, logger: logger)
                .put(site: site, processor: processor, secret: secret, rotate: rotate, orderIdField: orderIdField, box: box)
        } catch let error as StorageError where error.code == .invalid {
            throw APIError.invalid(.missingField, error.message, field: "webhook_secret")
        } catch let error as StorageError where error.code == .notFound {
            throw APIError(.notFound, .notFound, error.message)
        } catch let error as StorageError where error.code == .conflict {
            throw APIError(.conflict, .conflict, error.message)
        }
        logger.info("set the \(processor.rawValue) integration of site \(site)\(secret == nil ? "" : rotate ? " (secret added for rotation)" : " (secret replaced)")")
        return Response(status: .noContent)
    }

    static func integrationJSON(_ info: IntegrationInfo, site: String) -> JSONValue {
        .object([
            "processor": .string(info.processor.rawValue),
            "webhook_path": .string("/v1/webhooks/\(info.processor.rawValue)/\(site)"),
            "order_id_field": .string(info.orderIdField),
            "secrets": .array(info.secrets.map { secret in
                .object(["id": .number(String(secret.id)), "added_at": .string(Timestamp.formatRFC3339(Int64(secret.addedAt.timeIntervalSince1970 * 1000)))])
            }),
        ])
    }
}
