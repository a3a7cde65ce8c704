def work():
    return 1


if __name__ == "__main__":
    def main():
        print(work())
    main()
