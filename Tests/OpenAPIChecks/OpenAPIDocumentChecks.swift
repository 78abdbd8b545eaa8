import Contracts

/// The checks every OpenAPI document we serve must pass (the QueryAPI's and the Collector's),
/// written once. Each returns the problems it found, so a test expects an empty list and
/// prints what is wrong.
public struct OpenAPIDocumentChecks: Sendable {
    public let document: JSONValue

    public init(_ document: JSONValue) {
        self.document = document
    }

    /// `{"$ref": "#/components/…"}` → the referenced value (`.null` when it does not resolve);
    /// anything else as it is.
    public func resolve(_ value: JSONValue) -> JSONValue {
        guard let reference = value["$ref"]?.stringValue else { return value }
        guard reference.hasPrefix("#/") else { return .null }
        var current: JSONValue? = document
        for part in reference.dropFirst(2).split(separator: "/") { current = current?[String(part)] }
        return current ?? .null
    }

    /// Every `$ref` anywhere in the document.
    public var references: [String] {
        var references: [String] = []
        func collect(_ value: JSONValue) {
            if let object = value.objectValue {
                if let reference = object["$ref"]?.stringValue { references.append(reference) }
                object.values.forEach(collect)
            } else if let array = value.arrayValue {
                array.forEach(collect)
            }
        }
        collect(document)
        return references
    }

    public var unresolvedReferences: [String] {
        references.filter { resolve(.object(["$ref": .string($0)])) == .null }
    }

    /// Shared shapes are components so that operations refer to them; one nobody refers to is
    /// left over.
    public var unreferencedComponents: [String] {
        let text = document.serialized
        var unreferenced: [String] = []
        for (section, members) in document["components"]?.objectValue ?? [:] where section != "securitySchemes" {
            for name in (members.objectValue ?? [:]).keys where !text.contains("\"#/components/\(section)/\(name)\"") {
                unreferenced.append("components/\(section)/\(name)")
            }
        }
        return unreferenced.sorted()
    }

    /// Each operation has a unique operationId and documents a success; an authenticated one
    /// answers 401 with the shared error response; its path parameters are declared.
    public var operationProblems: [String] {
        var problems: [String] = [], operationIds: Set<String> = []
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for (method, operation) in item.objectValue ?? [:] {
                let name = "\(method.uppercased()) \(path)"
                if let id = operation["operationId"]?.stringValue {
                    if !operationIds.insert(id).inserted { problems.append("\(name): operationId \(id) is used twice") }
                } else {
                    problems.append("\(name) has no operationId")
                }
                let responses = operation["responses"]?.objectValue ?? [:]
                if !responses.keys.contains(where: { $0.hasPrefix("2") }) { problems.append("\(name) documents no success") }
                if operation["security"]?.arrayValue?.isEmpty == false,
                   responses["401"]?["$ref"]?.stringValue != "#/components/responses/Unauthorized" {
                    problems.append("\(name) is authenticated but does not answer 401 with #/components/responses/Unauthorized")
                }
                let declared = Set((operation["parameters"]?.arrayValue ?? []).compactMap { parameter -> String? in
                    let resolved = resolve(parameter)
                    return resolved["in"]?.stringValue == "path" ? resolved["name"]?.stringValue : nil
                })
                let inPath = Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
                if declared != inPath { problems.append("\(name) declares path parameters \(declared.sorted()), its path has \(inPath.sorted())") }
            }
        }
        return problems.sorted()
    }
}
