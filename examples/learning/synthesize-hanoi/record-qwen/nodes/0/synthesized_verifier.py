import json

def is_legal(observation, tool):
    # Parse observation text into a list of disks
    disks = [int(d) for d in observation.split()]
    
    # Get the size of the disk array
    n = len(disks)
    
    # Check if there are at least 3 disks
    if n < 3:
        return False, "Not enough disks"
    
    # Check if the target peg exists and is a valid position
    target_peg = 'B' if tool == 'A' else 'C'
    
    # Sort the disks to find the largest one on the left
    sorted_disks = sorted(disks)
    largest_disk_index = sorted_disks.index(sorted_disks[-1])
    
    # Check if the largest disk is smaller than the second-to-last disk
    if disk[largest_disk_index] < sorted_disks[-2]:
        return False, "The target peg cannot hold a larger disk"
    
    # Check if the action tool can handle the number of disks
    if n != len(sorted_disks):
        return False, f"Action tool cannot handle {n} disks"
    
    return True, ""

def main():
    with open('stdin', 'r') as stdin:
        while True:
            line = stdin.readline()
            if not line:
                break
            
            data = json.loads(line)
            
            # Check if the observation matches the expected format
            if data['method'] != "is_legal":
                print("Error: Method is not 'is_legal'.")
                continue
            
            # Get the tool and observation from the observation text
            tool = data['tool']
            observation = data['observation']
            
            # Check if the action is legal
            result, reason = is_legal(observation, tool)
            
            # Write the result to stdout with a confirmation message
            print(json.dumps({"id": data['id'], "legal": result, "reason": reason}))

if __name__ == "__main__":
    main()
