import Foundation
import UkeyCodec

/// Compares a `JSONValue` with what Foundation's independent parser made of the same document,
/// without going through our writer or reader (a bug shared by both would otherwise hide).
public enum FoundationJSON {
    public static func agrees(_ ours: JSONValue, _ theirs: Any) -> Bool {
        switch ours {
        case .null:
            return theirs is NSNull
        case .bool(let flag):
            guard let number = theirs as? NSNumber, isBoolean(number) else { return false }
            return number.boolValue == flag
        case .int(let integer):
            guard let number = theirs as? NSNumber, !isBoolean(number) else { return false }
            return number.int64Value == Int64(integer)
                && !(number is NSDecimalNumber && number.decimalValue != Decimal(integer))
        case .double(let double):
            guard let number = theirs as? NSNumber, !isBoolean(number) else { return false }
            let other = number.doubleValue
            // Foundation keeps long numbers as Decimal (38 digits), whose conversion to Double is
            // off in the last digits (fuzzing found 9.288888888888899e129 for a 130-digit literal
            // that strtod, and ours, read as 9.28888888888889e129); other numbers must agree exactly.
            if number is NSDecimalNumber { return abs(other - double) <= abs(double) * 1e-12 }
            return other == double
        case .string(let string):
            return (theirs as? String) == string
        case .array(let elements):
            guard let others = theirs as? [Any], others.count == elements.count else { return false }
            return zip(elements, others).allSatisfy { agrees($0, $1) }
        case .object(let members):
            guard let others = theirs as? [String: Any], others.count == members.count else { return false }
            return members.allSatisfy { key, value in others[key].map { agrees(value, $0) } ?? false }
        }
    }

    private static func isBoolean(_ number: NSNumber) -> Bool {
        type(of: number) == type(of: NSNumber(value: true))
    }
}
