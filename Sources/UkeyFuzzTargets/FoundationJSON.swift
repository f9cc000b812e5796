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
            return number.int64Value == Int64(integer) && !(number is NSDecimalNumber && number.decimalValue != Decimal(integer))
        case .double(let double):
            guard let number = theirs as? NSNumber, !isBoolean(number) else { return false }
            let other = number.doubleValue
            // Foundation keeps long numbers as Decimal, whose conversion to Double may be off in
            // the last bits; strtod's and ours must otherwise agree exactly.
            return other == double || abs(other - double) <= abs(double) * 1e-15
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
