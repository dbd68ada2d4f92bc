"""What a person reads: terminal tables (`tables`), figures (`plot`), the HTML/Markdown report (`html`).
"""
