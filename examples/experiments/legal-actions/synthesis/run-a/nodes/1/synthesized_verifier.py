import json

def is_legal(observation, tool):
    try:
        # Attempt to parse the observation as a number between 1 and 20
        number = int(observation)
        return True
    except ValueError:
        # Return false if cannot be parsed as an integer
        return False

def policy(observation):
    # For simplicity, always choose the highest hint possible
    return "higher"

# Read one request per line on stdin and write one JSON answer per line on stdout
for line in sys.stdin:
    data = json.loads(line)

    if data['method'] == 'is_legal':
        if is_legal(data['observation'], data['tool']):
            response = {"id": data['id'], "legal": True}
        else:
            response = {"id": data['id'], "legal": False, "reason": "The number is too low or too high"}
    elif data['method'] == 'legal_actions':
        action_tool = policy(data['observation'])
        if action_tool:
            response = {"id": data['id'], "actions": [action_tool]}
        else:
            response = {"id": data['id'], "actions": ["higher", "lower"]}
    else:
        print(f"Invalid request: {line}")
        
    # Flush after each answer
    sys.stdout.flush()
