def main():
    raise SystemExit("attnlens: not built yet")
