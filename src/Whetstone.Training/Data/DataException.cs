namespace Whetstone.Training.Data;

/// <summary>
/// Bad input data: a missing or malformed file, a folder layout that is not what was expected, a label the model
/// does not know. The message names the file (and line or example) and says what was expected.
/// </summary>
public sealed class DataException : Exception
{
    public DataException(string message) : base(message) { }

    public DataException(string message, Exception inner) : base(message, inner) { }

    public DataException() { }
}
