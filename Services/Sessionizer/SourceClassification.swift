import Contracts

/// The page URL's parts that matter for acquisition: host, path and campaign parameters.
struct PageURL {
    var host: String?
    var path: String?
    var query: [String: String] = [:]

    init?(_ text: String?) {
        guard let text, !text.isEmpty else { return nil }
        var rest = Substring(text)
        if let schemeEnd = rest.range(of: "://") {
            rest = rest[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            var authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
            if let colon = authority.lastIndex(of: ":") { authority = authority[..<colon] }
            host = authority.lowercased()
            rest = rest[authorityEnd...]
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let queryStart = rest.firstIndex(of: "?")
        let pathPart = queryStart.map { rest[..<$0] } ?? rest
        path = pathPart.isEmpty ? "/" : String(pathPart)
        if let queryStart {
            for (name, value) in FormEncoding.pairs(rest[rest.index(after: queryStart)...]) {
                let key = name.lowercased()
                if !value.isEmpty, query[key] == nil { query[key] = value }
            }
        }
    }
}

/// Classifies where a visit came from: campaign parameters first, then click ids, then the
/// referrer's domain, else direct.
enum SourceClassification {
    enum Kind { case search, social, email }

    /// Known referrer domains: a suffix of the host (so `www.google.de` matches `google.`).
    static let knownReferrers: [(match: String, source: String, kind: Kind)] = [
        ("google.", "google", .search), ("bing.com", "bing", .search), ("duckduckgo.com", "duckduckgo", .search),
        ("search.yahoo.", "yahoo", .search), ("yandex.", "yandex", .search), ("baidu.com", "baidu", .search),
        ("ecosia.org", "ecosia", .search), ("search.brave.com", "brave", .search), ("qwant.com", "qwant", .search),
        ("mail.google.com", "gmail", .email), ("outlook.live.com", "outlook", .email), ("mail.yahoo.", "yahoo mail", .email),
        ("facebook.com", "facebook", .social), ("fb.com", "facebook", .social), ("instagram.com", "instagram", .social),
        ("t.co", "twitter", .social), ("twitter.com", "twitter", .social), ("x.com", "twitter", .social),
        ("linkedin.com", "linkedin", .social), ("lnkd.in", "linkedin", .social), ("reddit.com", "reddit", .social),
        ("pinterest.", "pinterest", .social), ("youtube.com", "youtube", .social), ("tiktok.com", "tiktok", .social),
        ("threads.net", "threads", .social), ("bsky.app", "bluesky", .social),
    ]

    /// Click ids that imply an ad network and a paid medium when no UTM is present.
    static let clickIds: [(parameter: String, source: String, medium: String)] = [
        ("gclid", "google", "cpc"), ("msclkid", "bing", "cpc"),
        ("fbclid", "facebook", "paid_social"), ("ttclid", "tiktok", "paid_social"),
    ]

    /// Email webmail hosts first: they are more specific than their search engine's domain.
    static let referrersByPrecedence = knownReferrers.filter { $0.kind == .email } + knownReferrers.filter { $0.kind != .email }

    static func referrerKind(host: String) -> (source: String, kind: Kind)? {
        for entry in referrersByPrecedence where matches(host: host, pattern: entry.match) {
            return (entry.source, entry.kind)
        }
        return nil
    }

    /// `google.` matches any top-level domain (`google.de`, `www.google.co.uk`); other
    /// patterns match the domain and its subdomains.
    static func matches(host: String, pattern: String) -> Bool {
        if pattern.hasSuffix(".") { return host.hasPrefix(pattern) || host.contains("." + pattern) }
        return host == pattern || host.hasSuffix("." + pattern)
    }

    /// The acquisition context of a session starting with this page and referrer.
    static func context(page: PageURL?, referrer: String?) -> SourceContext {
        let query = page?.query ?? [:]
        let referrerURL = PageURL(referrer)
        var referrerHost = referrerURL?.host
        if let host = referrerHost, let pageHost = page?.host, sameSite(host, pageHost) { referrerHost = nil }
        let landingPage = page?.path ?? "(none)"
        let clickId = clickIds.first { query[$0.parameter] != nil }
        var context: SourceContext
        if let utmSource = query["utm_source"] {
            context = SourceContext(
                source: utmSource.lowercased(), medium: query["utm_medium"]?.lowercased() ?? "(not set)",
                campaign: query["utm_campaign"] ?? "(not set)", channel: "")
        } else if let clickId {
            context = SourceContext(source: clickId.source, medium: clickId.medium, campaign: query["utm_campaign"] ?? "(not set)", channel: "")
        } else if let host = referrerHost {
            switch referrerKind(host: host) {
            case let (source, kind)?:
                let medium = switch kind { case .search: "organic"; case .social: "social"; case .email: "email" }
                context = SourceContext(source: source, medium: medium, campaign: "(none)", channel: "")
            case nil:
                context = SourceContext(source: host.hasPrefix("www.") ? String(host.dropFirst(4)) : host, medium: "referral", campaign: "(none)", channel: "")
            }
        } else {
            context = .direct
        }
        context.term = query["utm_term"]
        context.content = query["utm_content"]
        context.clickId = clickId.flatMap { query[$0.parameter] }
        context.referrer = referrerHost == nil ? nil : referrer
        context.referrerDomain = referrerHost ?? "(none)"
        context.landingPage = landingPage
        context.channel = channel(source: context.source, medium: context.medium)
        return context
    }

    static func sameSite(_ first: String, _ second: String) -> Bool {
        func strip(_ host: String) -> Substring { host.hasPrefix("www.") ? host.dropFirst(4) : Substring(host) }
        return strip(first) == strip(second)
    }

    /// The default channel grouping, from source and medium.
    static func channel(source: String, medium: String) -> String {
        let sourceKind = referrerKind(host: source)?.kind ?? referrerKind(host: source + ".com")?.kind
        let medium = medium.lowercased()
        switch medium {
        case "(none)" where source == "(direct)": return "Direct"
        case "organic": return "Organic Search"
        case "cpc", "ppc", "paidsearch", "paid_search", "paid-search":
            if sourceKind == .social { return "Paid Social" }
            return sourceKind == .search || ["google", "bing", "yahoo", "baidu", "yandex", "duckduckgo"].contains(source) ? "Paid Search" : "Paid Other"
        case "paid_social", "paidsocial", "paid-social", "social_paid", "social-paid": return "Paid Social"
        case "social", "social-network", "social-media", "sm", "social_network", "social_media", "organic_social": return "Organic Social"
        case "email", "e-mail", "e_mail", "newsletter": return "Email"
        case "affiliate", "affiliates": return "Affiliates"
        case "display", "banner", "cpm", "interstitial", "expandable": return "Display"
        case "paid", "cpv", "cpa", "cpp", "content-text": return "Paid Other"
        case "referral", "link": return sourceKind == .social ? "Organic Social" : sourceKind == .search ? "Organic Search" : "Referral"
        default:
            if sourceKind == .social { return "Organic Social" }
            return "Unassigned"
        }
    }
}
