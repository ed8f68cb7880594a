namespace Whetstone.Models.Tokenizers.ChatTemplates;

/// <summary>
/// A chat template that could not be parsed or rendered: <see cref="Reason"/> says what went wrong (or what was
/// expected), <see cref="Line"/> and <see cref="Column"/> (1-based, 0 when unknown) where in the template.
/// </summary>
public class ChatTemplateException : Exception
{
    /// <summary>1-based line of the template, 0 when the error has no place in it.</summary>
    public int Line { get; }
    /// <summary>1-based column of the template, 0 when the error has no place in it.</summary>
    public int Column { get; }
    /// <summary>The message without the location.</summary>
    public string Reason { get; }

    public ChatTemplateException(string reason, int line = 0, int column = 0)
        : base(line > 0 ? $"chat template, line {line} column {column}: {reason}" : $"chat template: {reason}")
    {
        Reason = reason;
        Line = line;
        Column = column;
    }

    public ChatTemplateException() : this("error") { }
    public ChatTemplateException(string message, Exception inner) : base(message, inner) { Reason = message; }
}

/// <summary>
/// The template itself refused the conversation through <c>raise_exception(msg)</c> (for example "Conversation roles
/// must alternate user/assistant/user/assistant/..."); <see cref="ChatTemplateException.Reason"/> is the template's message.
/// </summary>
public sealed class ChatTemplateRaisedException : ChatTemplateException
{
    public ChatTemplateRaisedException(string reason, int line, int column) : base(reason, line, column) { }
    public ChatTemplateRaisedException() { }
    public ChatTemplateRaisedException(string message, Exception inner) : base(message, inner) { }
}
