import Contracts

/// The page URL's parts that matter for acquisition: host, path and campaign parameters.
struct PageURL {
    var host: String?
    var path: String?
    var query: [String: String] = [:]

    init?(_ text: String?) {
        guard let text, !text.isEmpty else { return nil }
        var rest = Substring(text)
        // `host/path` without a scheme (some apps and proxies send referrers like that) still names a host.
        let firstSegment = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        // `firstRange(of:)` is the standard library's; Foundation's `range(of:)` bridges through NSString.
        let separator = rest.firstRange(of: "://")
        let schemeless = separator == nil && firstSegment.contains(".") && !firstSegment.contains(" ") && !rest.hasPrefix("/")
        if let schemeEnd = separator ?? (schemeless ? rest.startIndex..<rest.startIndex : nil) {
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
    /// Android apps refer as `android-app://<package>`, whose "host" is the package name.
    static let knownReferrers: [(match: String, source: String, kind: Kind)] = [
        ("com.google.android.gm", "gmail", .email), ("com.microsoft.office.outlook", "outlook", .email),
        ("com.google.android.googlequicksearchbox", "google", .search), ("com.google.android.youtube", "youtube", .social),
        ("com.facebook.katana", "facebook", .social), ("com.instagram.android", "instagram", .social),
        ("com.twitter.android", "twitter", .social), ("com.linkedin.android", "linkedin", .social),
        ("com.reddit.frontpage", "reddit", .social), ("com.pinterest", "pinterest", .social),
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

    /// App packages first, then webmail hosts: both are more specific than a search engine's domain.
    static let referrersByPrecedence = knownReferrers.filter { $0.match.hasPrefix("com.") }
        + knownReferrers.filter { !$0.match.hasPrefix("com.") && $0.kind == .email }
        + knownReferrers.filter { !$0.match.hasPrefix("com.") && $0.kind != .email }

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

    /// The acquisition context of a session starting with this page and referrer. A referrer
    /// on the site's own hosts counts as none.
    static func context(page: PageURL?, referrer: String?, ownHosts: Set<String> = []) -> SourceContext {
        let query = page?.query ?? [:]
        let referrerURL = PageURL(referrer)
        var referrerHost = referrerURL?.host
        if let host = referrerHost, isOwnHost(host, pageHost: page?.host, ownHosts: ownHosts) { referrerHost = nil }
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

    /// The page's own host or one of the site's hosts, with or without `www.`.
    static func isOwnHost(_ host: String, pageHost: String?, ownHosts: Set<String>) -> Bool {
        if let pageHost, sameSite(host, pageHost) { return true }
        return ownHosts.contains { sameSite(host, $0) }
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
