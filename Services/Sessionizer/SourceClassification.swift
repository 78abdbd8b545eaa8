import Contracts

/// The page URL's parts that matter for acquisition: host, path and campaign parameters.
struct PageURL: Equatable {
    var host: String?
    var path: String?
    var query: [String: String] = [:]

    init?(_ text: String?) {
        guard let text, !text.isEmpty else { return nil }
        self = PageURL(ascii: text) ?? PageURL(general: text)
    }

    /// Any non-empty text, `Character` by `Character`.
    init(general text: String) {
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

extension PageURL {
    private init() {}

    /// The same parts as `init?(_:)`, read from the UTF-8 bytes; nil unless the text is
    /// ASCII without carriage returns, where every byte is one `Character` and both readings
    /// agree (most URLs; the rest take the general path).
    init?(ascii text: String) {
        var text = text
        let parsed: PageURL? = text.withUTF8 { bytes in
            for byte in bytes where byte >= 0x80 || byte == 0x0D { return nil }
            let slash = UInt8(ascii: "/"), question = UInt8(ascii: "?"), hash = UInt8(ascii: "#")
            func first(from start: Int, to end: Int, where match: (UInt8) -> Bool) -> Int? {
                var index = start
                while index < end {
                    if match(bytes[index]) { return index }
                    index += 1
                }
                return nil
            }
            func string(_ start: Int, _ end: Int) -> String {
                String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
            }
            var url = PageURL()
            let count = bytes.count
            let firstSegmentEnd = first(from: 0, to: count, where: { $0 == slash || $0 == question || $0 == hash }) ?? count
            var separator: Int?
            if count >= 3 {
                for index in 0...(count - 3)
                where bytes[index] == UInt8(ascii: ":") && bytes[index + 1] == slash && bytes[index + 2] == slash {
                    separator = index
                    break
                }
            }
            let hasDot = first(from: 0, to: firstSegmentEnd, where: { $0 == UInt8(ascii: ".") }) != nil
            let hasSpace = first(from: 0, to: firstSegmentEnd, where: { $0 == UInt8(ascii: " ") }) != nil
            let schemeless = separator == nil && hasDot && !hasSpace && bytes[0] != slash
            var rest = 0
            if separator != nil || schemeless {
                rest = separator.map { $0 + 3 } ?? 0
                let authorityEnd = first(from: rest, to: count, where: { $0 == slash || $0 == question || $0 == hash }) ?? count
                var authorityStart = rest
                var index = authorityEnd
                while index > rest {
                    index -= 1
                    if bytes[index] == UInt8(ascii: "@") { authorityStart = index + 1; break }
                }
                var hostEnd = authorityEnd
                index = authorityEnd
                while index > authorityStart {
                    index -= 1
                    if bytes[index] == UInt8(ascii: ":") { hostEnd = index; break }
                }
                var host = [UInt8](UnsafeBufferPointer(rebasing: bytes[authorityStart..<hostEnd]))
                for position in host.indices where host[position] >= UInt8(ascii: "A") && host[position] <= UInt8(ascii: "Z") {
                    host[position] += 0x20
                }
                url.host = String(decoding: host, as: UTF8.self)
                rest = authorityEnd
            }
            let end = first(from: rest, to: count, where: { $0 == hash }) ?? count
            let queryStart = first(from: rest, to: end, where: { $0 == question })
            let pathEnd = queryStart ?? end
            url.path = pathEnd == rest ? "/" : string(rest, pathEnd)
            guard let queryStart else { return url }
            // `FormEncoding.pairs`: `&`-separated, empty pairs skipped, split at the first `=`.
            func decoded(_ start: Int, _ end: Int) -> String {
                let escaped = first(from: start, to: end, where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) != nil
                return escaped ? FormEncoding.percentDecode(Substring(string(start, end))) : string(start, end)
            }
            var pairStart = queryStart + 1
            while pairStart < end {
                let pairEnd = first(from: pairStart, to: end, where: { $0 == UInt8(ascii: "&") }) ?? end
                if pairEnd > pairStart {
                    let equals = first(from: pairStart, to: pairEnd, where: { $0 == UInt8(ascii: "=") })
                    let name = decoded(pairStart, equals ?? pairEnd)
                    if !name.isEmpty {
                        let value = equals.map { decoded($0 + 1, pairEnd) } ?? ""
                        let key = name.utf8.allSatisfy { $0 < 0x80 && !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) } ? name : name.lowercased()
                        if !value.isEmpty, url.query[key] == nil { url.query[key] = value }
                    }
                }
                pairStart = pairEnd + 1
            }
            return url
        }
        guard let parsed else { return nil }
        self = parsed
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
        ("gclid", "google", "cpc"), ("gbraid", "google", "cpc"), ("wbraid", "google", "cpc"), ("msclkid", "bing", "cpc"),
        ("fbclid", "facebook", "paid_social"), ("ttclid", "tiktok", "paid_social"),
    ]

    /// App packages first, then webmail hosts: both are more specific than a search engine's domain.
    static let referrersByPrecedence = knownReferrers.filter { $0.match.hasPrefix("com.") }
        + knownReferrers.filter { !$0.match.hasPrefix("com.") && $0.kind == .email }
        + knownReferrers.filter { !$0.match.hasPrefix("com.") && $0.kind != .email }

    /// `referrersByPrecedence` with each pattern's `.`-prefixed form made once, not per lookup.
    static let referrerPatterns = referrersByPrecedence.map { (match: $0.match, dotted: "." + $0.match, source: $0.source, kind: $0.kind) }

    static func referrerKind(host: String) -> (source: String, kind: Kind)? {
        for entry in referrerPatterns where matches(host: host, pattern: entry.match, dotted: entry.dotted) {
            return (entry.source, entry.kind)
        }
        return nil
    }

    /// `google.` matches any top-level domain (`google.de`, `www.google.co.uk`); other
    /// patterns match the domain and its subdomains.
    static func matches(host: String, pattern: String) -> Bool {
        matches(host: host, pattern: pattern, dotted: "." + pattern)
    }

    /// `dotted` is `"." + pattern`.
    static func matches(host: String, pattern: String, dotted: String) -> Bool {
        if pattern.hasSuffix(".") { return host.hasPrefix(pattern) || contains(host, dotted) }
        return host == pattern || host.hasSuffix(dotted)
    }

    /// `text.contains(part)`, searched byte by byte when both are ASCII (where every search
    /// agrees), instead of through Foundation's `NSString` bridge.
    static func contains(_ text: String, _ part: String) -> Bool {
        var text = text, part = part
        let ascii: Bool? = text.withUTF8 { haystack in
            part.withUTF8 { needle -> Bool? in
                guard haystack.allSatisfy({ $0 < 0x80 }), needle.allSatisfy({ $0 < 0x80 }) else { return nil }
                guard !needle.isEmpty else { return true }
                guard needle.count <= haystack.count else { return false }
                for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
                    var index = 1
                    while index < needle.count, haystack[start + index] == needle[index] { index += 1 }
                    if index == needle.count { return true }
                }
                return false
            }
        }
        return ascii ?? text.contains(part)
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
        context.clickIdName = clickId?.parameter
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
