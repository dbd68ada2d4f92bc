"""`python -m convsched`: the same as the `convsched` command."""

from .cli import main

if __name__ == "__main__":
    main()
