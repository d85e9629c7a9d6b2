using System.Collections.Generic;
using System.Text;

namespace Hvo.Scenario;

/// <summary>What a token of a script is.</summary>
internal enum TokenKind
{
    Word,

    /// <summary><c>;</c> <c>&amp;&amp;</c> <c>||</c> <c>|</c> <c>&gt;</c> <c>&gt;&gt;</c> and the ones refused (<c>&amp;</c> <c>&lt;</c> <c>(</c> <c>)</c>).</summary>
    Operator,

    Newline,

    /// <summary>A <c>#</c> at the start of a word, to the end of the line.</summary>
    Comment,

    End,
}

/// <summary>A token and where it is: offsets into the text for the source it spans, a 1-based line and column.</summary>
internal readonly record struct Token(TokenKind Kind, string Operator, ShellWord? Word, int Start, int End, int Line, int Column)
{
    public bool Is(string op) => Kind == TokenKind.Operator && Operator == op;

    /// <summary>An unquoted literal word that is exactly <paramref name="keyword"/> (<c>for</c>, <c>do</c>, <c>done</c>, ...).</summary>
    public bool IsKeyword(string keyword) =>
        Kind == TokenKind.Word && Word!.Parts is [LiteralPart { Quoted: false } l] && l.Text == keyword;
}

/// <summary>
/// Splits a script into tokens on demand, as a POSIX shell reads it: blanks separate words; single
/// quotes keep everything; double quotes keep all but <c>$NAME</c>, <c>${NAME}</c>, <c>$?</c> and
/// the escapes <c>\$ \` \" \\</c>; a backslash outside quotes keeps the next character, and a
/// backslash before a line break joins the lines. Shell syntax outside the vocabulary (command and
/// arithmetic substitution, positional parameters, brace expansion, <c>2&gt;</c>) is a
/// <see cref="ScriptError"/> at its column; <see cref="SkipLine"/> lets the parser go on after it.
/// </summary>
internal sealed class ShellLexer
{
    private readonly string _text;
    private readonly string _file;
    private readonly List<int> _lineStarts = [0];
    private int _pos;
    private Token? _peeked;

    public ShellLexer(string text, string file)
    {
        _text = text;
        _file = file;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    public string Text => _text;

    /// <summary>Where offset <paramref name="offset"/> is.</summary>
    public SourceLocation At(int offset)
    {
        int line = _lineStarts.BinarySearch(offset);
        if (line < 0)
        {
            line = ~line - 1;
        }

        return new SourceLocation(_file, line + 1, offset - _lineStarts[line] + 1);
    }

    /// <summary>The offset where the line holding <paramref name="offset"/> ends (its line break, or the end of the text).</summary>
    public int LineEnd(int offset)
    {
        int nl = _text.IndexOf('\n', offset);
        return nl < 0 ? _text.Length : nl;
    }

    public Token Peek() => _peeked ??= Read();

    public Token Next()
    {
        Token t = Peek();
        _peeked = null;
        return t;
    }

    /// <summary>After an error: drop the rest of the current line, up to (not including) its line break.</summary>
    public void SkipLine()
    {
        int from = _peeked is { } p ? p.Start : _pos;
        if (_peeked is { Kind: TokenKind.Newline or TokenKind.End })
        {
            return;
        }

        _peeked = null;
        _pos = LineEnd(from);
    }

    private ScriptError Error(int offset, string reason) => new(At(offset), reason);

    private Token Make(TokenKind kind, int start, string op = "", ShellWord? word = null)
    {
        SourceLocation at = At(start);
        return new Token(kind, op, word, start, _pos, at.Line, at.Column);
    }

    private Token Read()
    {
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c is ' ' or '\t' or '\r')
            {
                _pos++;
            }
            else if (c == '\\' && _pos + 1 < _text.Length && _text[_pos + 1] == '\n')
            {
                _pos += 2; // a continuation line
            }
            else
            {
                break;
            }
        }

        int start = _pos;
        if (_pos >= _text.Length || _text[_pos] == '\n')
        {
            // Carriage returns just before a line break or the end belong to the break (a pasted
            // CRLF text), so a location there stays inside its line as an editor shows it.
            while (start > 0 && _text[start - 1] == '\r')
            {
                start--;
            }
        }

        if (_pos >= _text.Length)
        {
            return Make(TokenKind.End, start);
        }

        char ch = _text[_pos];
        switch (ch)
        {
            case '\n':
                _pos++;
                return Make(TokenKind.Newline, start);
            case '#':
                _pos = LineEnd(_pos);
                return Make(TokenKind.Comment, start, _text[start.._pos]);
            case ';' or '&' or '|' or '>' or '<' or '(' or ')':
                string op = _pos + 1 < _text.Length && _text[_pos + 1] == ch && ch is ';' or '&' or '|' or '>' or '<' ? new string(ch, 2) : ch.ToString();
                _pos += op.Length;
                return Make(TokenKind.Operator, start, op);
        }

        return Make(TokenKind.Word, start, word: ReadWord(start));
    }

    private ShellWord ReadWord(int start)
    {
        var parts = new List<WordPart>();
        var plain = new StringBuilder();
        bool quoted = false;

        void FlushPlain()
        {
            if (plain.Length > 0)
            {
                parts.Add(new LiteralPart(plain.ToString(), false));
                plain.Clear();
            }
        }

        void AddQuoted(string text)
        {
            FlushPlain();
            parts.Add(new LiteralPart(text, true));
        }

        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c is ' ' or '\t' or '\r' or '\n' or ';' or '&' or '|' or '<' or '(' or ')')
            {
                break;
            }

            if (c == '>')
            {
                if (!quoted && parts.Count == 0 && plain.Length > 0 && IsDigits(plain))
                {
                    throw Error(start, $"'{plain}>' redirects file descriptor {plain} in a shell, so nothing would be written: put a blank before '>' (echo {plain} > PATH)");
                }

                break;
            }

            switch (c)
            {
                case '\'':
                    int close = _text.IndexOf('\'', _pos + 1);
                    if (close < 0 || close > LineEnd(_pos))
                    {
                        throw Error(_pos, "unterminated ' quote");
                    }

                    AddQuoted(_text[(_pos + 1)..close]);
                    quoted = true;
                    _pos = close + 1;
                    continue;

                case '"':
                    FlushPlain();
                    ReadDoubleQuoted(parts);
                    quoted = true;
                    continue;

                case '\\':
                    if (_pos + 1 >= _text.Length)
                    {
                        throw Error(_pos, "the script ends with '\\': nothing follows to join");
                    }

                    if (_text[_pos + 1] == '\n')
                    {
                        _pos += 2; // joins the next line to this word
                        continue;
                    }

                    AddQuoted(_text[_pos + 1].ToString());
                    _pos += 2;
                    continue;

                case '$':
                    if (ReadDollar(quoted: false) is { } variable)
                    {
                        FlushPlain();
                        parts.Add(variable);
                    }
                    else
                    {
                        plain.Append('$');
                    }

                    continue;

                case '`':
                    throw Error(_pos, "command substitution (`...`) is not supported: write the value");

                case '{' or '}':
                    throw Error(_pos, $"shell syntax '{c}' is not supported: no brace expansion or {{ }} groups; list the values (for n in 1 2 3)");
            }

            plain.Append(c);
            _pos++;
        }

        FlushPlain();
        return new ShellWord(parts, At(start));
    }

    // "...": $NAME, ${NAME}, $? expand; backslash escapes only $ ` " \ (and joins lines).
    private void ReadDoubleQuoted(List<WordPart> parts)
    {
        int open = _pos;
        _pos++;
        var text = new StringBuilder();
        void Flush()
        {
            parts.Add(new LiteralPart(text.ToString(), true));
            text.Clear();
        }

        bool any = false;
        while (_pos < _text.Length)
        {
            char c = _text[_pos];
            if (c == '"')
            {
                _pos++;
                if (text.Length > 0 || !any)
                {
                    Flush();
                }

                return;
            }

            if (c == '\n')
            {
                break;
            }

            if (c == '\\' && _pos + 1 < _text.Length && _text[_pos + 1] is '$' or '`' or '"' or '\\')
            {
                text.Append(_text[_pos + 1]);
                _pos += 2;
                continue;
            }

            if (c == '`')
            {
                throw Error(_pos, "command substitution (`...`) is not supported: write the value");
            }

            if (c == '$')
            {
                if (ReadDollar(quoted: true) is { } variable)
                {
                    if (text.Length > 0)
                    {
                        Flush();
                    }

                    parts.Add(variable);
                    any = true;
                }
                else
                {
                    text.Append('$');
                }

                continue;
            }

            text.Append(c);
            _pos++;
        }

        throw Error(open, "unterminated \" quote");
    }

    // At a '$': a variable, or null for a '$' that stays as it is (before a blank, a quote, the end).
    private VariablePart? ReadDollar(bool quoted)
    {
        int at = _pos;
        char next = _pos + 1 < _text.Length ? _text[_pos + 1] : '\0';
        if (next == '(')
        {
            throw Error(at, _pos + 2 < _text.Length && _text[_pos + 2] == '('
                ? "arithmetic expansion $((...)) is not supported: write the number"
                : "command substitution $(...) is not supported: write the value");
        }

        if (next == '?')
        {
            _pos += 2;
            return new VariablePart("?", quoted);
        }

        if (next == '{')
        {
            int close = _text.IndexOf('}', _pos + 2);
            string name = close < 0 ? string.Empty : _text[(_pos + 2)..close];
            if (close < 0 || close > LineEnd(_pos) || !IsName(name))
            {
                throw Error(at, "only ${NAME} is supported inside ${...}: no defaults, lengths or substitutions");
            }

            _pos = close + 1;
            return new VariablePart(name, quoted);
        }

        if (char.IsAsciiDigit(next) || next is '@' or '*' or '#' or '$' or '!' or '-')
        {
            throw Error(at, $"'${next}' is not supported: a script has no arguments, process ids or options to expand");
        }

        if (!IsNameStart(next))
        {
            _pos++;
            return null;
        }

        int end = _pos + 1;
        while (end < _text.Length && IsNameChar(_text[end]))
        {
            end++;
        }

        string variable = _text[(_pos + 1)..end];
        _pos = end;
        return new VariablePart(variable, quoted);
    }

    public static bool IsName(string s)
    {
        if (s.Length == 0 || !IsNameStart(s[0]))
        {
            return false;
        }

        foreach (char c in s)
        {
            if (!IsNameChar(c))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsNameStart(char c) => c == '_' || char.IsAsciiLetter(c);

    private static bool IsNameChar(char c) => c == '_' || char.IsAsciiLetterOrDigit(c);

    private static bool IsDigits(StringBuilder word)
    {
        for (int i = 0; i < word.Length; i++)
        {
            if (!char.IsAsciiDigit(word[i]))
            {
                return false;
            }
        }

        return true;
    }
}
