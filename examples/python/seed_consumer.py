from rpcservices import client, services

myClient = client.XmlRpcClient("http://localhost:8000")
inStack = myClient.stack.createStack("in")
while True:
    try:
        item = inStack.pop()
    except services.stack.StackIndexError:
        break
    print("pop item %s" % item)
