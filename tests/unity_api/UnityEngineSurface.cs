// The part of the UnityEngine API that engine_plugins/unity/Runtime/Unity and Samples~ use, declared
// with Unity's signatures so that Mono's mcs can type-check those scripts here (no Unity assemblies
// can be had on this machine). A compile check of our code against the API as declared below, not a
// Unity runtime: tests/test_unity_core.py::test_unity_layer_type_checks.
using System;

namespace UnityEngine
{
    public class Object { }
    public class Component : Object
    {
        public Transform transform { get { return null; } }
        public GameObject gameObject { get { return null; } }
    }
    public class Behaviour : Component { }
    public class MonoBehaviour : Behaviour { }
    public class Transform : Component { public Vector3 position { get; set; } }
    public enum PrimitiveType { Sphere, Capsule, Cylinder, Cube, Plane, Quad }
    public sealed class GameObject : Object
    {
        public Transform transform { get { return null; } }
        public T AddComponent<T>() where T : Component { return null; }
        public static GameObject CreatePrimitive(PrimitiveType type) { return null; }
    }
    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { this.x = x; this.y = y; this.z = z; }
        public static Vector3 zero { get { return new Vector3(0, 0, 0); } }
        public float magnitude { get { return 0f; } }
        public Vector3 normalized { get { return this; } }
        public static Vector3 operator +(Vector3 a, Vector3 b) { return a; }
        public static Vector3 operator -(Vector3 a, Vector3 b) { return a; }
        public static Vector3 operator *(Vector3 a, float d) { return a; }
        public static Vector3 operator *(float d, Vector3 a) { return a; }
        public static Vector3 operator /(Vector3 a, float d) { return a; }
    }
    public static class Mathf
    {
        public static float Clamp(float value, float min, float max) { return value; }
        public static int Clamp(int value, int min, int max) { return value; }
        public static float Clamp01(float value) { return value; }
        public static float Max(float a, float b) { return a; }
        public static int Max(int a, int b) { return a; }
        public static float Sin(float f) { return f; }
        public static float Cos(float f) { return f; }
    }
    public static class Time
    {
        public static float time { get { return 0f; } }
        public static float deltaTime { get { return 0f; } }
        public static float fixedDeltaTime { get { return 0f; } }
        public static float timeScale { get { return 1f; } set { } }
    }
    public static class Debug { public static void Log(object message) { } }
    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }
    [AttributeUsage(AttributeTargets.Field)]
    public class PropertyAttribute : Attribute { }
    public sealed class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string header) { } }
    public sealed class TooltipAttribute : PropertyAttribute { public TooltipAttribute(string tooltip) { } }
    public sealed class RangeAttribute : PropertyAttribute { public RangeAttribute(float min, float max) { } }
}

namespace UnityEngine.Events
{
    public abstract class UnityEventBase { }
    public class UnityEvent<T0, T1> : UnityEventBase
    {
        public void AddListener(Action<T0, T1> call) { }
        public void Invoke(T0 arg0, T1 arg1) { }
    }
    public class UnityEvent<T0, T1, T2, T3> : UnityEventBase
    {
        public void AddListener(Action<T0, T1, T2, T3> call) { }
        public void Invoke(T0 arg0, T1 arg1, T2 arg2, T3 arg3) { }
    }
}
