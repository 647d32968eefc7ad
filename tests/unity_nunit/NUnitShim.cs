// The part of NUnit's API the Unity package's tests use, so that the same test files that Unity's Test
// Runner (NUnit 3) lists also compile and run under Mono in CI, where no NUnit assembly can be had.
// Semantics follow NUnit's: AreEqual compares arrays element by element and numbers by value.
using System;
using System.Collections;

namespace NUnit.Framework
{
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class TestFixtureAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute { }

    public delegate void TestDelegate();

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        static void Fail(string what, string message)
        {
            throw new AssertionException(string.IsNullOrEmpty(message) ? what : message + ": " + what);
        }

        public static void AreEqual(object expected, object actual, string message = null)
        {
            if (!Same(expected, actual)) Fail("expected " + Show(expected) + " but was " + Show(actual), message);
        }

        public static void AreEqual(double expected, double actual, double delta, string message = null)
        {
            if (Math.Abs(expected - actual) > delta) Fail("expected " + expected + " +/- " + delta + " but was " + actual, message);
        }

        public static void IsTrue(bool condition, string message = null) { if (!condition) Fail("expected true", message); }
        public static void IsFalse(bool condition, string message = null) { if (condition) Fail("expected false", message); }
        public static void IsNull(object o, string message = null) { if (o != null) Fail("expected null but was " + Show(o), message); }
        public static void IsNotNull(object o, string message = null) { if (o == null) Fail("expected not null", message); }

        public static T Throws<T>(TestDelegate code) where T : Exception
        {
            try { code(); }
            catch (T e) { return e; }
            catch (Exception e) { Fail("expected " + typeof(T).Name + " but got " + e.GetType().Name + ": " + e.Message, null); }
            Fail("expected " + typeof(T).Name + " but nothing was thrown", null);
            return null;
        }

        static bool Same(object a, object b)
        {
            if (a == null || b == null) return a == null && b == null;
            if (IsNumber(a) && IsNumber(b)) return Convert.ToDecimal(a) == Convert.ToDecimal(b) || Convert.ToDouble(a).Equals(Convert.ToDouble(b));
            var x = a as IEnumerable;
            var y = b as IEnumerable;
            if (x != null && y != null && !(a is string))
            {
                var ex = x.GetEnumerator();
                var ey = y.GetEnumerator();
                while (true)
                {
                    bool mx = ex.MoveNext(), my = ey.MoveNext();
                    if (mx != my) return false;
                    if (!mx) return true;
                    if (!Same(ex.Current, ey.Current)) return false;
                }
            }
            return a.Equals(b);
        }

        static bool IsNumber(object o)
        {
            return o is sbyte || o is byte || o is short || o is ushort || o is int || o is uint || o is long
                || o is ulong || o is float || o is double || o is decimal;
        }

        static string Show(object o) { return o == null ? "null" : o is string ? "\"" + o + "\"" : o.ToString(); }
    }
}
