// Runs every [Test] method of every [TestFixture] class in this assembly (the Unity package's Tests/Runtime
// and Tests/Editor files compiled with NUnitShim.cs) and prints one line a test and "N passed, N failed".
using System;
using System.Linq;
using System.Reflection;
using NUnit.Framework;

public static class UnityTestsRunner
{
    public static int Main()
    {
        int passed = 0, failed = 0;
        var fixtures = Assembly.GetExecutingAssembly().GetTypes()
            .Where(t => t.GetCustomAttributes(typeof(TestFixtureAttribute), false).Length > 0)
            .OrderBy(t => t.FullName);
        foreach (var type in fixtures)
        {
            foreach (var m in type.GetMethods().Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0))
            {
                string name = type.FullName + "." + m.Name;
                try
                {
                    m.Invoke(Activator.CreateInstance(type), null);
                    passed++;
                    Console.WriteLine("PASS " + name);
                }
                catch (TargetInvocationException e)
                {
                    failed++;
                    Console.WriteLine("FAIL " + name + ": " + e.InnerException.Message);
                }
            }
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 && passed > 0 ? 0 : 1;
    }
}
