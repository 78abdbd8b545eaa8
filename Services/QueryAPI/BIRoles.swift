import Contracts
import HTTPAPI
import Hummingbird
import Storage

extension QueryAPI {
    /// `POST /v1/admin/sites/{site}/bi-role`: 201 with a new login role that reads only this
    /// site's rows of schema `analytics`, or 200 with a new password for the existing one. The
    /// password is in this answer only: it is neither logged nor stored (Postgres keeps a SCRAM
    /// verifier computed here, so not even the database server sees it).
    func createOrRotateBIRole(_ request: Request, context: some RequestContext) async throws -> Response {
        try requireAdmin(request)
        let site = try context.parameters.require("site")
        guard Self.isStorable(site) else { throw APIError(.notFound, .notFound, "site '\(site)' does not exist") }
        let role: SiteBIRole
        do {
            role = try await SiteBIRoleStore(client: postgres, logger: logger).createOrRotate(site: site)
        } catch let error as StorageError {
            throw biRoleError(error)
        }
        logger.info("\(role.created ? "created" : "rotated the password of") BI role \(role.role) of site \(site)")
        var headers = HTTPFields()
        headers[.cacheControl] = "no-store"
        return JSONResponse.make(role.created ? .created : .ok, .object([
            "site": .string(role.site), "role": .string(role.role), "database": .string(role.database),
            "password": .string(role.password),
        ]), headers: headers)
    }

    /// `DELETE /v1/admin/sites/{site}/bi-role`: 204 once the role is dropped, 404 when the site
    /// or its role does not exist.
    func dropBIRole(_ request: Request, context: some RequestContext) async throws -> Response {
        try requireAdmin(request)
        let site = try context.parameters.require("site")
        guard Self.isStorable(site) else { throw APIError(.notFound, .notFound, "site '\(site)' does not exist") }
        let dropped: Bool
        do {
            dropped = try await SiteBIRoleStore(client: postgres, logger: logger).drop(site: site)
        } catch let error as StorageError {
            throw biRoleError(error)
        }
        guard dropped else { throw APIError(.notFound, .notFound, "site '\(site)' has no BI role") }
        logger.info("dropped the BI role of site \(site)")
        return Response(status: .noContent)
    }

    func biRoleError(_ error: StorageError) -> APIError {
        switch error.code {
        case .notFound: return APIError(.notFound, .notFound, error.message)
        case .conflict: return APIError(.conflict, .conflict, error.message)
        // A deployment whose Postgres role lacks CREATEROLE: the operator has to act.
        case .privilege: return APIError(.serviceUnavailable, .unavailable, error.message)
        default:
            logger.error("query-api request failed: \(error.message)")
            return APIError(.internalServerError, .internalError, "internal error; see the server log")
        }
    }
}
