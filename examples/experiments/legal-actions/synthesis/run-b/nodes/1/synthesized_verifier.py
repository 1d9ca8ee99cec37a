import json

def is_legal(observation, tool):
    # Parse observation text to extract number and hints
    try:
        number = int(observation.split()[1])
        hints = int(observation.split()[-2])
    except ValueError:
        return None, "Invalid input format. Please provide the number and hints."

    # Check if the player's actions are legal based on hints
    if hints >= 5:
        return True, "Legal actions."
    else:
        return False, "Legal actions are not possible without them."

def main():
    for line in sys.stdin:
        data = json.loads(line)
        
        if data['method'] == 'is_legal':
            legal, reason = is_legal(data['observation'], data['tool'])
            answer = {"id": data['id'], "legal": legal}
            print(answer)

if __name__ == "__main__":
    main()
