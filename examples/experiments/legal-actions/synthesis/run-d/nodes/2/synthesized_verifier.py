import json, sys

def is_legal(observation, action):
    """
    Return (True, "") when the action is legal here, else (False, "why it is not").
    """
    
    # Check if the action is a legal move for this game
    if action == "move_to_A_C":
        # Assuming there's only one disk left to move from A to C
        return True, ""
    elif action == "move_from_A_C_to_B":
        # Assuming there's at least one disk left to move from A to B
        return True, ""
    else:
        return False, "This is not a legal move"

for line in sys.stdin:
    req = json.loads(line)
    
    if not isinstance(req["action"], str):
        print("Invalid action provided:", req["action"])
        continue
    
    action = req.get("action", "")
    ok, why = is_legal(req.get("observation") or "", action)
    
    answer = {"id": req["id"], "legal": bool(ok)}
    if not ok:
        answer["reason"] = str(why)
    
    print(json.dumps(answer), flush=True)

# Define the player's guidance
player_guidance = """
For example, [5].

As you play, the history of your guesses will be appended below. Use the information to complete the game before you run out of guesses.
Enter your guess.

"""

# Print the player's guidance
print(player_guidance)
