namespace Hvo.Scenario;

/// <summary>The errno values a kernel file returns here, with their Linux numbers.</summary>
public enum Errno
{
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    EINTR = 4,
    E2BIG = 7,
    ENOMEM = 12,
    EACCES = 13,
    EBUSY = 16,
    EEXIST = 17,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    EFBIG = 27,
    ENOSPC = 28,
    ERANGE = 34,
    EOPNOTSUPP = 95,
}

/// <summary>strerror(3) as glibc words it: what a shell prints after a failed open or write.</summary>
public static class ErrnoText
{
    public static string Message(Errno e) => e switch
    {
        Errno.None => "Success",
        Errno.EPERM => "Operation not permitted",
        Errno.ENOENT => "No such file or directory",
        Errno.EINTR => "Interrupted system call",
        Errno.E2BIG => "Argument list too long",
        Errno.ENOMEM => "Cannot allocate memory",
        Errno.EACCES => "Permission denied",
        Errno.EBUSY => "Device or resource busy",
        Errno.EEXIST => "File exists",
        Errno.ENOTDIR => "Not a directory",
        Errno.EISDIR => "Is a directory",
        Errno.EINVAL => "Invalid argument",
        Errno.EFBIG => "File too large",
        Errno.ENOSPC => "No space left on device",
        Errno.ERANGE => "Numerical result out of range",
        Errno.EOPNOTSUPP => "Operation not supported",
        _ => $"Unknown error {(int)e}",
    };
}
