import Contracts
import Foundation
import HTTPAPI
import Hummingbird
import Logging
import PostgresNIO
import Storage

public struct QueryAPIConfiguration: Sendable {
    /// Bearer token of the admin endpoints (`TRIBUTARY_ADMIN_TOKEN`). Empty disables them.
    public var adminToken = ""
    /// Publishes a goal or funnel change to `tributary.definitions` (for the Aggregator to build
    /// or drop its rollup). Nil publishes nothing: the Aggregator then notices the change at its
    /// next periodic reconcile.
    public var publishDefinitionChange: (@Sendable (DefinitionChange) async throws -> Void)?
    /// Seals payment webhook secrets (`TRIBUTARY_SECRET_KEY`); nil refuses to store any.
    public var secretBox: SecretBox?

    public init() {}
}

/// The read side: reports over the rollups, and site administration.
public struct QueryAPI: Sendable {
    let configuration: QueryAPIConfiguration
    let postgres: PostgresClient
    let directory: SiteDirectory
    let logger: Logger

    public init(configuration: QueryAPIConfiguration, postgres: PostgresClient, directory: SiteDirectory, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.directory = directory
        self.logger = logger
    }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.post("/v1/admin/sites") { request, context in
            try await handle(request) { try await self.createSite(request, context: context) }
        }
        router.get("/v1/admin/sites") { request, _ in
            try await handle(request) {
                try self.requireAdmin(request)
                let sites = try await SiteStore(client: self.postgres, logger: self.logger).list()
                return JSONResponse.ok(.object(["sites": .array(sites.map(Self.siteJSON))]))
            }
        }
        router.patch("/v1/admin/sites/:site") { request, context in
            try await handle(request) { try await self.updateSite(request, context: context) }
        }
        router.post("/v1/admin/sites/:site/keys") { request, context in
            try await handle(request) {
                try self.requireAdmin(request)
                let site = try context.parameters.require("site")
                guard Self.isStorable(site) else { throw APIError(.notFound, .notFound, "site '\(site)' does not exist") }
                do {
                    let keys = try await SiteStore(client: self.postgres, logger: self.logger).rotateKeys(site: site)
                    return JSONResponse.make(.created, Self.keysJSON(site: site, keys: keys))
                } catch let error as StorageError where error.code == .notFound {
                    throw APIError(.notFound, .notFound, error.message)
                }
            }
        }
        router.post("/v1/admin/sites/:site/bi-role") { request, context in
            try await handle(request) { try await self.createOrRotateBIRole(request, context: context) }
        }
        router.delete("/v1/admin/sites/:site/bi-role") { request, context in
            try await handle(request) { try await self.dropBIRole(request, context: context) }
        }
        // The settings a report reader needs (its days are in the site's time zone).
        router.get("/v1/sites/:site") { request, context in
            try await handle(request) {
                JSONResponse.ok(Self.siteJSON(try await self.authorizeRead(request, site: try context.parameters.require("site"))))
            }
        }
        router.get("/v1/sites/:site/revenue") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context)
                return JSONResponse.ok(try await RevenueReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query))
            }
        }
        router.get("/v1/sites/:site/overview") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context)
                return JSONResponse.ok(try await OverviewReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query))
            }
        }
        router.get("/v1/sites/:site/attribution") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context, ignoring: ["model", "lookback_days", "conversion"])
                return JSONResponse.ok(try await AttributionReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query, parameters: Self.parameters(request)))
            }
        }
        router.get("/v1/sites/:site/retention") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context, ignoring: ["event", "period"])
                return JSONResponse.ok(try await RetentionReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query, parameters: Self.parameters(request)))
            }
        }
        router.get("/v1/sites/:site/products") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context, ignoring: ["breakdown"])
                return JSONResponse.ok(try await ProductsReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query, parameters: Self.parameters(request)))
            }
        }
        router.get("/v1/sites/:site/customers") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context)
                return JSONResponse.ok(try await CustomersReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query))
            }
        }
        router.get("/v1/sites/:site/carts") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context)
                return JSONResponse.ok(try await CartsReport(postgres: self.postgres, logger: self.logger).run(site: site, query: query))
            }
        }
        router.get("/v1/sites/:site/reconciliation") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context, ignoring: ["breakdown"])
                let breakdown = Self.parameters(request).last { $0.0 == "breakdown" }?.1
                return JSONResponse.ok(try await ReconciliationReport(postgres: self.postgres, logger: self.logger).run(site: site.id, query: query, breakdown: breakdown))
            }
        }
        addDefinitionRoutes(to: router)
        addIntegrationRoutes(to: router)
        addDestinationRoutes(to: router)
        // Read the resources now, at start-up: a broken bundle stops the process here.
        let openAPI = OpenAPI.json
        let dashboard = ByteBuffer(string: Dashboard.page)
        router.get("/openapi.json") { _, _ in
            JSONResponse.ok(openAPI)
        }
        router.get("/") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: dashboard))
        }
    }

    /// Runs a handler, turning unexpected errors into a JSON 500 without leaking internals.
    ///
    /// While Postgres restarts, its connections are cut and new ones refused for a moment: a
    /// read (GET) is run again on a fresh connection for up to 10 s, so a report answers as if
    /// nothing happened; a write, or a read past that, gets 503 with `Retry-After`.
    func handle(_ request: Request, _ body: () async throws -> Response) async throws -> Response {
        let deadline = ContinuousClock.now + .seconds(10)
        var pause = Duration.milliseconds(100)
        while true {
            do {
                return try await body()
            } catch let error as APIError {
                throw error
            } catch where Self.isDatabaseUnavailable(error) {
                if request.method == .get, ContinuousClock.now + pause < deadline {
                    try await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(1))
                    continue
                }
                logger.warning("query-api: Postgres unavailable, answered 503: \(String(reflecting: error))")
                var unavailable = APIError(.serviceUnavailable, .unavailable, "the database is unavailable; retry shortly")
                unavailable.retryAfter = 5
                throw unavailable
            } catch {
                logger.error("query-api request failed: \(String(reflecting: error))")
                throw APIError(.internalServerError, .internalError, "internal error; see the server log")
            }
        }
    }

    /// A connection cut or refused, or the server shutting down (SQLSTATE classes 08 and 57).
    static func isDatabaseUnavailable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown:
            return true
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57")
        default:
            return false
        }
    }

    func createSite(_ request: Request, context: some RequestContext) async throws -> Response {
        try requireAdmin(request)
        let document = try await Self.body(request)
        guard let id = document["id"]?.stringValue, !id.isEmpty else { throw APIError.invalid(.missingField, "id is required", field: "id") }
        var site = Site(id: id, name: id)
        try Self.apply(document, to: &site)
        do {
            let keys = try await SiteStore(client: postgres, logger: logger).create(site)
            logger.info("created site \(site.id)")
            return JSONResponse.make(.created, Self.keysJSON(site: site.id, keys: keys))
        } catch let error as StorageError where error.code == .conflict {
            throw APIError(.conflict, .conflict, error.message, field: "id")
        } catch let error as StorageError where error.code == .invalid {
            throw APIError.invalid(.invalidParameter, error.message)
        }
    }

    /// `PATCH /v1/admin/sites/{site}`: the settings present in the body change, the others
    /// stay; `default_currency: null` removes the default. Answers the site's settings.
    func updateSite(_ request: Request, context: some RequestContext) async throws -> Response {
        try requireAdmin(request)
        let id = try context.parameters.require("site")
        let store = SiteStore(client: postgres, logger: logger)
        guard Self.isStorable(id), var site = try await store.site(id: id) else {
            throw APIError(.notFound, .notFound, "site '\(id)' does not exist")
        }
        let document = try await Self.body(request)
        if let given = document["id"]?.stringValue, given != id {
            throw APIError.invalid(.invalidParameter, "a site's id cannot change", field: "id")
        }
        try Self.apply(document, to: &site)
        do {
            guard try await store.update(site) else { throw APIError(.notFound, .notFound, "site '\(id)' does not exist") }
        } catch let error as StorageError where error.code == .invalid {
            throw APIError.invalid(.invalidParameter, error.message)
        }
        logger.info("updated the settings of site \(id)")
        return JSONResponse.ok(Self.siteJSON(site))
    }

    /// The site settings of a create or update body.
    static func apply(_ document: JSONValue, to site: inout Site) throws(APIError) {
        if let name = document["name"]?.stringValue { site.name = name }
        if let timezone = document["timezone"]?.stringValue { site.timezone = timezone }
        if let origins = document["allowed_origins"]?.arrayValue { site.allowedOrigins = origins.compactMap(\.stringValue) }
        if let timeout = document["session_timeout_minutes"]?.scalarText {
            guard let minutes = Int(timeout), minutes > 0, minutes <= 24 * 60 else {
                throw APIError.invalid(.invalidParameter, "session_timeout_minutes must be 1 to 1440", field: "session_timeout_minutes")
            }
            site.sessionTimeoutMinutes = minutes
        }
        if let maxLength = document["session_max_length_minutes"]?.scalarText {
            guard let minutes = Int(maxLength), minutes > 0, minutes <= 7 * 24 * 60 else {
                throw APIError.invalid(.invalidParameter, "session_max_length_minutes must be 1 to 10080", field: "session_max_length_minutes")
            }
            site.sessionMaxLengthMinutes = minutes
        }
        if let split = document["split_sessions_at_midnight"] {
            guard let value = split.boolValue else {
                throw APIError.invalid(.invalidParameter, "split_sessions_at_midnight must be true or false", field: "split_sessions_at_midnight")
            }
            site.splitSessionsAtMidnight = value
        }
        if let window = document["cart_abandonment_minutes"]?.scalarText {
            guard let minutes = Int(window), minutes > 0, minutes <= 90 * 24 * 60 else {
                throw APIError.invalid(.invalidParameter, "cart_abandonment_minutes must be 1 to 129600", field: "cart_abandonment_minutes")
            }
            site.cartAbandonmentMinutes = minutes
        }
        if let currency = document.objectValue?["default_currency"] {
            if currency == .null {
                site.defaultCurrency = nil
            } else {
                guard let code = currency.stringValue, let parsed = Currency(code: code) else {
                    throw APIError.invalid(.invalidCurrency, "default_currency must be an ISO 4217 code (or null)", field: "default_currency")
                }
                site.defaultCurrency = parsed.code
            }
        }
    }

    func requireAdmin(_ request: Request) throws(APIError) {
        guard !configuration.adminToken.isEmpty else {
            throw APIError(.forbidden, .forbidden, "admin endpoints are disabled: set TRIBUTARY_ADMIN_TOKEN")
        }
        guard let token = request.bearerToken else { throw APIError(.unauthorized, .unauthorized, "admin token required") }
        guard isAdminToken(token) else { throw APIError(.unauthorized, .unauthorized, "invalid admin token") }
    }

    /// Constant-time comparison with the admin token: no timing hint about its content.
    func isAdminToken(_ token: String) -> Bool {
        guard !configuration.adminToken.isEmpty else { return false }
        let given = Array(token.utf8), expected = Array(configuration.adminToken.utf8)
        var difference = given.count ^ expected.count
        for index in 0..<min(given.count, expected.count) { difference |= Int(given[index] ^ expected[index]) }
        return difference == 0
    }

    /// The site a report request may read, and its parsed common parameters.
    /// Parameters a report reads itself are passed over (`ignoring`) by the common parser.
    func reportRequest(_ request: Request, context: some RequestContext, ignoring: Set<String> = [],
                       parameters given: [(String, String)]? = nil) async throws -> (Site, ReportQuery) {
        let site = try await authorizeRead(request, site: try context.parameters.require("site"))
        let parameters = given ?? Self.parameters(request)
        for (name, value) in parameters {
            try Self.refuseNUL(name, field: name)
            try Self.refuseNUL(value, field: name)
        }
        let query = try ReportQuery.parse(parameters.filter { !ignoring.contains($0.0) }, today: Self.today(in: site.timezone))
        return (site, query)
    }

    static func parameters(_ request: Request) -> [(String, String)] {
        parameters(query: request.uri.query)
    }

    /// A query string's parameters decoded as browsers and form encoders write them (the
    /// application/x-www-form-urlencoded rules): names percent-decoded like values, so
    /// `filter%5Bsource%5D` (URLSearchParams, Python's urlencode) is `filter[source]`, and `+`
    /// a space. A malformed escape stays as sent.
    static func parameters(query: String?) -> [(String, String)] {
        func decoded(_ text: Substring) -> String {
            let spaced = text.replacingOccurrences(of: "+", with: " ")
            return spaced.removingPercentEncoding ?? spaced
        }
        return (query ?? "").split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (decoded(parts[0]), parts.count > 1 ? decoded(parts[1]) : "")
        }
    }

    /// Postgres text cannot hold U+0000: no site or definition has it, and query and path
    /// parameters with it are refused (or not found) here rather than failing in SQL. (JSON
    /// bodies cannot carry it: `JSONValue.parse` turns `\u0000` into U+FFFD.)
    static func isStorable(_ text: String) -> Bool { !text.utf8.contains(0) }

    static func refuseNUL(_ text: String, field: String) throws(APIError) {
        guard isStorable(text) else {
            throw .invalid(.invalidParameter, "\(field) may not contain NUL (U+0000) characters", field: field)
        }
    }

    /// A read or owner key of this site (or the admin token) may read its reports.
    func authorizeRead(_ request: Request, site: String) async throws -> Site {
        try await authorize(request, site: site, kinds: [.read, .owner], refusal: "a server key cannot read reports; use the site's read key")
    }

    /// The owner key of this site (or the admin token) may manage its goals, funnels and
    /// integrations.
    func authorizeOwner(_ request: Request, site: String) async throws -> Site {
        try await authorize(request, site: site, kinds: [.owner], refusal: "this needs the site's owner key (or the admin token)")
    }

    /// The admin token may do anything to any site; a key only what its kind allows, for its
    /// own site. 401 without a valid token, 403 for a key of another kind or site, 404 for
    /// an unknown site.
    func authorize(_ request: Request, site: String, kinds: Set<KeyKind>, refusal: String) async throws -> Site {
        guard let token = request.bearerToken else { throw APIError(.unauthorized, .unauthorized, "a key or the admin token is required") }
        if !isAdminToken(token) {
            guard let resolved = try await directory.resolve(key: token) else { throw APIError(.unauthorized, .unauthorized, "unknown or revoked key") }
            guard kinds.contains(resolved.kind) else { throw APIError(.forbidden, .forbidden, refusal) }
            guard resolved.site == site else { throw APIError(.forbidden, .forbidden, "this key may not access site '\(site)'") }
        }
        guard Self.isStorable(site), let found = try await directory.site(site) else { throw APIError(.notFound, .notFound, "site '\(site)' does not exist") }
        return found
    }

    static func today(in timezone: String) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timezone) ?? .gmt
        let parts = calendar.dateComponents([.year, .month, .day], from: Date())
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    static func siteJSON(_ site: Site) -> JSONValue {
        .object([
            "id": .string(site.id), "name": .string(site.name), "timezone": .string(site.timezone),
            "allowed_origins": .array(site.allowedOrigins.map { .string($0) }),
            "session_timeout_minutes": .number(String(site.sessionTimeoutMinutes)),
            "session_max_length_minutes": .number(String(site.sessionMaxLengthMinutes)),
            "split_sessions_at_midnight": .bool(site.splitSessionsAtMidnight),
            "default_currency": site.defaultCurrency.map { .string($0) } ?? .null,
            "cart_abandonment_minutes": .number(String(site.cartAbandonmentMinutes)),
        ])
    }

    static func keysJSON(site: String, keys: SiteKeys) -> JSONValue {
        .object(["site": .string(site), "server_key": .string(keys.serverKey), "read_key": .string(keys.readKey),
                 "owner_key": .string(keys.ownerKey)])
    }
}

extension QueryAPI {
    /// Goals and funnels: anyone who may read the site lists them and reads their reports;
    /// creating and deleting takes the site's owner key or the admin token.
    func addDefinitionRoutes(to router: Router<some RequestContext>) {
        let store = DefinitionStore(postgres: postgres, logger: logger)
        router.post("/v1/sites/:site/goals") { request, context in
            try await handle(request) {
                let site = try await self.authorizeWrite(request, context: context)
                let goal = try await store.create(try Goal.parse(try await Self.body(request)), site: site.id)
                await self.announce(DefinitionChange(kind: .goal, id: goal.id, site: site.id, deleted: false, definition: goal.json))
                return JSONResponse.make(.created, goal.json)
            }
        }
        router.get("/v1/sites/:site/goals") { request, context in
            try await handle(request) {
                let (site, _) = try await self.reportRequest(request, context: context)
                return JSONResponse.ok(.object(["goals": .array(try await store.goals(site: site.id).map(\.json))]))
            }
        }
        router.delete("/v1/sites/:site/goals/:id") { request, context in
            try await handle(request) {
                let site = try await self.authorizeWrite(request, context: context)
                let id = try Self.id(context)
                guard try await store.delete(.goal, id: id, site: site.id) else { throw APIError(.notFound, .notFound, "no such goal") }
                await self.announce(DefinitionChange(kind: .goal, id: id, site: site.id, deleted: true))
                return Response(status: .noContent)
            }
        }
        router.get("/v1/sites/:site/goals/:id/report") { request, context in
            try await handle(request) {
                var parameters = Self.parameters(request)
                let byEventName = GoalReport.takeEventNameBreakdown(&parameters)
                let (site, query) = try await self.reportRequest(request, context: context, parameters: parameters)
                guard let goal = try await store.goals(site: site.id, id: try Self.id(context)).first else { throw APIError(.notFound, .notFound, "no such goal") }
                return JSONResponse.ok(try await GoalReport(postgres: self.postgres, logger: self.logger).run(site: site.id, goal: goal, query: query, byEventName: byEventName))
            }
        }
        router.post("/v1/sites/:site/funnels") { request, context in
            try await handle(request) {
                let site = try await self.authorizeWrite(request, context: context)
                let funnel = try await store.create(try Funnel.parse(try await Self.body(request)), site: site.id)
                await self.announce(DefinitionChange(kind: .funnel, id: funnel.id, site: site.id, deleted: false, definition: funnel.json))
                return JSONResponse.make(.created, funnel.json)
            }
        }
        router.post("/v1/sites/:site/funnels/templates/ecommerce") { request, context in
            try await handle(request) {
                let site = try await self.authorizeWrite(request, context: context)
                let funnel = try await store.create(Funnel.ecommerce, site: site.id)
                await self.announce(DefinitionChange(kind: .funnel, id: funnel.id, site: site.id, deleted: false, definition: funnel.json))
                return JSONResponse.make(.created, funnel.json)
            }
        }
        router.get("/v1/sites/:site/funnels") { request, context in
            try await handle(request) {
                let (site, _) = try await self.reportRequest(request, context: context)
                return JSONResponse.ok(.object(["funnels": .array(try await store.funnels(site: site.id).map(\.json))]))
            }
        }
        router.delete("/v1/sites/:site/funnels/:id") { request, context in
            try await handle(request) {
                let site = try await self.authorizeWrite(request, context: context)
                let id = try Self.id(context)
                guard try await store.delete(.funnel, id: id, site: site.id) else { throw APIError(.notFound, .notFound, "no such funnel") }
                await self.announce(DefinitionChange(kind: .funnel, id: id, site: site.id, deleted: true))
                return Response(status: .noContent)
            }
        }
        router.get("/v1/sites/:site/funnels/:id/report") { request, context in
            try await handle(request) {
                let (site, query) = try await self.reportRequest(request, context: context)
                guard let funnel = try await store.funnels(site: site.id, id: try Self.id(context)).first else { throw APIError(.notFound, .notFound, "no such funnel") }
                return JSONResponse.ok(try await FunnelReport(postgres: self.postgres, logger: self.logger).run(site: site.id, timezone: site.timezone, funnel: funnel, query: query))
            }
        }
    }

    /// Tells the Aggregator about a stored change. A failure is logged, not answered: the change
    /// is stored, reports compute it from the facts meanwhile, and the Aggregator's periodic
    /// reconcile builds the rollup anyway.
    func announce(_ change: DefinitionChange) async {
        guard let publish = configuration.publishDefinitionChange else { return }
        do {
            try await publish(change)
        } catch {
            logger.warning("could not publish \(change.kind) \(change.id) of site \(change.site) to the definitions topic (\(error)); the Aggregator's next reconcile picks it up")
        }
    }

    /// The site's owner key (or the admin token) may change its definitions.
    func authorizeWrite(_ request: Request, context: some RequestContext) async throws -> Site {
        try await authorizeOwner(request, site: try context.parameters.require("site"))
    }

    static let maximumBodyBytes = 64 * 1024

    /// The request's JSON body: 413 beyond 64 KiB, 400 when it is not JSON.
    static func body(_ request: Request) async throws(APIError) -> JSONValue {
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: maximumBodyBytes) } catch {
            throw APIError(.contentTooLarge, .tooLarge, "the request body exceeds \(maximumBodyBytes) bytes")
        }
        do { return try JSONValue.parse(body.readableBytesView) } catch { throw APIError.invalid(.invalidJSON, "invalid JSON: \(error)") }
    }

    static func id(_ context: some RequestContext) throws -> Int64 {
        guard let id = Int64(try context.parameters.require("id")) else { throw APIError(.notFound, .notFound, "no such id") }
        return id
    }
}
